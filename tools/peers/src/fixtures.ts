/**
 * Images built by the real dockerd for archive, store and cache tests (issue 4):
 * a busybox base, a classic-builder image with metadata steps, a tree of awkward
 * files (symlinks, hardlinks, whiteouts, long and unicode names, a large random
 * file), two images sharing a base, and one chain holding the same layer twice.
 *
 * Every builder is idempotent and safe across processes: a per-tag lock
 * serialises builds, and an image already under the tag is reused as it is, so
 * every test process of a run sees the same image ID.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { DockerPeer } from "./dockerd.js";
import { peersDir } from "./dockerd.js";
import { PeerCommandError } from "./errors.js";
import { BUSYBOX_TAG, buildImage, busyboxBase, type ContextFile, imageId } from "./images.js";
import { withLock } from "./proc.js";

/** An image a fixture built: its tag and ID (`sha256:…`). */
export interface FixtureImage {
  tag: string;
  id: string;
}

/** Common options: the tag to build (each fixture has a default under `berth-fixture/`). */
export interface FixtureOptions {
  tag?: string;
}

/** A fixed mtime (2001-09-09) for context files, so rebuilds hit the cache and layers are stable. */
const MTIME = 1_000_000_000;

function lockFor(tag: string): string {
  return join(peersDir(), "locks", `fixture-${tag.replace(/[^A-Za-z0-9_.-]/g, "_")}.lock`);
}

async function build(
  peer: DockerPeer,
  tag: string,
  dockerfile: string,
  files: Record<string, string | Uint8Array | ContextFile> = {},
  buildArgs?: Record<string, string>,
): Promise<FixtureImage> {
  await busyboxBase(peer);
  const ctx: Record<string, ContextFile> = {};
  for (const [k, v] of Object.entries(files)) {
    ctx[k] = typeof v === "string" || v instanceof Uint8Array ? { content: v, mtime: MTIME } : { mtime: MTIME, ...v };
  }
  return withLock(lockFor(tag), 600_000, async () => {
    // Reuse what another test process built: a rebuild after some other test
    // pruned the builder cache would give the tag a new ID mid-run.
    const existing = await imageId(peer, tag);
    if (existing) return { tag, id: existing };
    const r = await buildImage(peer, { tag, dockerfile, files: ctx, buildArgs });
    return { tag, id: r.id };
  });
}

/** The static-busybox base image ({@link busyboxBase}), tag `berth-test/busybox:1`. */
export async function busyboxImage(peer: DockerPeer): Promise<FixtureImage> {
  return { tag: BUSYBOX_TAG, id: await busyboxBase(peer) };
}

/**
 * A classic-builder (`DOCKER_BUILDKIT=0`) image with ENV, LABEL, ARG, WORKDIR
 * (new directory, so a real layer), two COPY steps, a RUN using the build arg
 * (`|1 VER=1` in history), a `RUN true` (empty layer), EXPOSE, USER, ENTRYPOINT
 * and CMD. Default tag `berth-fixture/classic:1`; layers: busybox + WORKDIR +
 * 2×COPY + RUN = 5.
 */
export async function classicImage(peer: DockerPeer, opts: FixtureOptions = {}): Promise<FixtureImage> {
  const tag = opts.tag ?? "berth-fixture/classic:1";
  return build(
    peer,
    tag,
    [
      `FROM ${BUSYBOX_TAG}`,
      `ENV A=1 B="two words"`,
      `LABEL org.opencontainers.image.title="berth classic fixture" com.example.flag=yes`,
      `ARG VER=0`,
      `WORKDIR /app`,
      `COPY hello.txt ./`,
      `COPY conf/ /etc/berth/`,
      `RUN echo "version $VER" > /app/version.txt && chmod 600 /app/version.txt`,
      `RUN true`,
      `EXPOSE 8080/tcp`,
      `USER 0:0`,
      `ENTRYPOINT ["/bin/sh", "-c"]`,
      `CMD ["cat /app/hello.txt"]`,
      "",
    ].join("\n"),
    {
      "hello.txt": "hello from the classic fixture\n",
      "conf/a.conf": "a=1\n",
      "conf/sub/b.conf": { content: "b=2\n", mode: 0o600 },
    },
    { VER: "1" },
  );
}

/** Names and paths inside {@link filesImage}, for tests to check. */
export interface FilesImageContents {
  /** A file name longer than 100 bytes (PAX `path`). */
  longName: string;
  /** A path longer than 255 bytes through nested directories. */
  longPath: string;
  /** Non-ASCII names. */
  unicodeNames: string[];
  /** Symlink path → target: relative, absolute, dangling, to a directory, and a target over 100 bytes. */
  symlinks: Record<string, string>;
  /** Hardlinked paths (one inode, all created in layer 2; in the tar the name sorting first holds the data). */
  hardlinks: string[];
  /** Paths created in one layer and deleted in a later one (whiteouts). */
  deleted: string[];
  /** The large random file and its size in bytes. */
  largeFile: { path: string; size: number };
}

/** Options of {@link filesImage}. */
export interface FilesImageOptions extends FixtureOptions {
  /** Size of the random file in bytes (default 4 MiB). Made inside the container from /dev/urandom. */
  largeFileSize?: number;
}

/**
 * A tree of awkward files over four layers on busybox:
 * 1. COPY: regular files with long (>100 byte) and unicode names, a >255 byte
 *    path, an empty file, an executable;
 * 2. RUN: symlinks (relative, absolute, dangling, to a dir, long target),
 *    hardlinks, a fifo, files and a directory that the next layer deletes;
 * 3. RUN: deletes them (whiteouts `.wh.<name>`), also `/bin/ls` from the
 *    busybox layer;
 * 4. RUN: a random file of `largeFileSize` bytes (`head -c N /dev/urandom`).
 * Default tag `berth-fixture/files:1` (include the size in custom tags: a
 * different size with the same tag rebuilds and retags).
 */
export async function filesImage(
  peer: DockerPeer,
  opts: FilesImageOptions = {},
): Promise<FixtureImage & { contents: FilesImageContents }> {
  const size = opts.largeFileSize ?? 4 * 1024 * 1024;
  if (!Number.isSafeInteger(size) || size < 0) throw new PeerCommandError(`filesImage: bad largeFileSize ${size}`);
  // the tag names the parameters: an image already under it is reused as it is
  const tag = opts.tag ?? (size === 4 * 1024 * 1024 ? "berth-fixture/files:1" : `berth-fixture/files-${size}:1`);
  const longName = `${"long-name-".repeat(12)}end.txt`; // 127 bytes
  const longDirs = ["d".repeat(90), "e".repeat(90), "f".repeat(90)];
  const longPath = `/data/deep/${longDirs.join("/")}/leaf.txt`;
  const unicodeNames = ["/data/ünïcödé.txt", "/data/日本語のファイル.txt", "/data/emoji-😀.txt", "/data/with space.txt"];
  const longTarget = `/data/deep/${longDirs.join("/")}/leaf.txt`;
  const contents: FilesImageContents = {
    longName: `/data/${longName}`,
    longPath,
    unicodeNames,
    symlinks: {
      "/data/link-rel": "hello.txt",
      "/data/link-abs": "/data/hello.txt",
      "/data/link-dangling": "does-not-exist",
      "/data/link-dir": "deep",
      "/data/link-long": longTarget,
    },
    hardlinks: ["/data/linked-a.txt", "/data/linked-b.txt", "/data/sub/linked-c.txt"],
    deleted: ["/data/to-delete.txt", "/data/dir-to-delete", "/bin/ls"],
    largeFile: { path: "/data/large.bin", size },
  };
  const files: Record<string, string | ContextFile> = {
    "tree/hello.txt": "hello\n",
    [`tree/${longName}`]: "a long name\n",
    [`tree/deep/${longDirs.join("/")}/leaf.txt`]: "deep leaf\n",
    "tree/empty": "",
    "tree/run.sh": { content: "#!/bin/sh\necho run\n", mode: 0o755 },
    "tree/sub/.keep": "",
  };
  for (const u of unicodeNames) files[`tree/${u.slice("/data/".length)}`] = `${u}\n`;
  const ln = Object.entries(contents.symlinks)
    .map(([p, t]) => `ln -s '${t}' '${p}'`)
    .join(" && ");
  return {
    ...(await build(
      peer,
      tag,
      [
        `FROM ${BUSYBOX_TAG}`,
        `COPY tree/ /data/`,
        `RUN ${ln} && echo linked > /data/linked-a.txt && ln /data/linked-a.txt /data/linked-b.txt` +
          ` && ln /data/linked-a.txt /data/sub/linked-c.txt` +
          ` && mkfifo /data/fifo && echo bye > /data/to-delete.txt && mkdir -p /data/dir-to-delete/inner` +
          ` && echo x > /data/dir-to-delete/inner/x.txt`,
        `RUN rm /data/to-delete.txt && rm -r /data/dir-to-delete && rm /bin/ls`,
        `RUN head -c ${size} /dev/urandom > /data/large.bin`,
        "",
      ].join("\n"),
      files,
    )),
    contents,
  };
}

/** Result of {@link sharedBaseImages}. */
export interface SharedBaseImages {
  /** busybox + one RUN layer. */
  base: FixtureImage;
  /** base + its own layer and ENV. */
  a: FixtureImage;
  /** base + a different layer and LABEL. */
  b: FixtureImage;
}

/**
 * Two images on one base: `berth-fixture/shared-base:1` (busybox + a layer),
 * `berth-fixture/shared-a:1` and `berth-fixture/shared-b:1` each adding one
 * different layer. Saving a and b together must store the base layers once.
 * `opts.tag` is a prefix replacing `berth-fixture/shared`.
 */
export async function sharedBaseImages(peer: DockerPeer, opts: FixtureOptions = {}): Promise<SharedBaseImages> {
  const prefix = opts.tag ?? "berth-fixture/shared";
  const base = await build(peer, `${prefix}-base:1`, `FROM ${BUSYBOX_TAG}\nRUN echo base > /base.txt\n`);
  const a = await build(peer, `${prefix}-a:1`, `FROM ${base.tag}\nENV WHICH=a\nRUN echo a > /a.txt\n`);
  const b = await build(peer, `${prefix}-b:1`, `FROM ${base.tag}\nLABEL which=b\nRUN echo b > /b.txt\n`);
  return { base, a, b };
}

/**
 * One chain holding the same layer content twice: `COPY same.txt /same.txt`,
 * `RUN rm /same.txt` (a whiteout), `COPY same.txt /same.txt` again — the first
 * and third new layers have the same DiffID (different ChainIDs). Default tag
 * `berth-fixture/repeated:1`; `repeated` gives the indexes in RootFS.Layers
 * (busybox is 0).
 */
export async function repeatedLayerImage(
  peer: DockerPeer,
  opts: FixtureOptions = {},
): Promise<FixtureImage & { repeated: [number, number] }> {
  const tag = opts.tag ?? "berth-fixture/repeated:1";
  const img = await build(
    peer,
    tag,
    `FROM ${BUSYBOX_TAG}\nCOPY same.txt /same.txt\nRUN rm /same.txt\nCOPY same.txt /same.txt\n`,
    { "same.txt": "the same bytes twice\n" },
  );
  return { ...img, repeated: [1, 3] };
}

/** Options of {@link randomImage}. */
export interface RandomImageOptions extends FixtureOptions {
  /** Number of layers on top of busybox (default 3). */
  layers?: number;
  /** Bytes of data per layer (default 1 MiB). */
  layerSize?: number;
  /**
   * `random`: one file of /dev/urandom bytes per layer (incompressible);
   * `text`: compressible text; `small-files`: files of ~4 KiB text each. Default `random`.
   */
  kind?: "random" | "text" | "small-files";
}

/**
 * An image of `layers` layers of generated data (made inside the container, so
 * nothing is held in memory here), for benchmarks and size tests. Default tag
 * `berth-fixture/random-<kind>-<layers>x<layerSize>:1`.
 */
export async function randomImage(peer: DockerPeer, opts: RandomImageOptions = {}): Promise<FixtureImage> {
  const layers = opts.layers ?? 3;
  const size = opts.layerSize ?? 1024 * 1024;
  const kind = opts.kind ?? "random";
  if (!Number.isSafeInteger(layers) || layers < 1 || layers > 100) {
    throw new PeerCommandError(`randomImage: bad layers ${layers}`);
  }
  if (!Number.isSafeInteger(size) || size < 0) throw new PeerCommandError(`randomImage: bad layerSize ${size}`);
  const tag = opts.tag ?? `berth-fixture/random-${kind}-${layers}x${size}:1`;
  const steps: string[] = [`FROM ${BUSYBOX_TAG}`];
  for (let i = 0; i < layers; i++) {
    if (kind === "random") steps.push(`RUN head -c ${size} /dev/urandom > /layer-${i}.bin`);
    else if (kind === "text") {
      // base64 of random bytes: compressible to ~75 %; `seq` lines: very compressible. Mix both.
      steps.push(
        `RUN (seq 1 ${Math.ceil(size / 14)} | sed 's/$/ layer ${i} line/'; head -c ${size} /dev/urandom | base64) | head -c ${size} > /layer-${i}.txt`,
      );
    } else {
      const n = Math.max(1, Math.ceil(size / 4096));
      steps.push(
        `RUN mkdir -p /files-${i} && i=0; while [ $i -lt ${n} ]; do head -c 3072 /dev/urandom | base64 > /files-${i}/f-$i.txt; i=$((i+1)); done`,
      );
    }
  }
  return build(peer, tag, `${steps.join("\n")}\n`);
}

/**
 * `docker save REFS -o OUTFILE` (the daemon streams it; nothing is held in
 * memory). Returns the file's size in bytes.
 */
export async function dockerSave(peer: DockerPeer, refs: string | string[], outFile: string): Promise<{ size: number }> {
  const list = typeof refs === "string" ? [refs] : refs;
  if (list.length === 0) throw new PeerCommandError("dockerSave: no image references");
  await peer.run(["save", "-o", outFile, ...list], { timeoutMs: 600_000 });
  return { size: (await stat(outFile)).size };
}

/**
 * `docker load -i FILE` (a path; streamed by the client). Returns the
 * `Loaded image: …` / `Loaded image ID: …` values it printed.
 */
export async function dockerLoad(peer: DockerPeer, file: string): Promise<string[]> {
  await stat(file); // a clear ENOENT before docker's message
  const r = await peer.run(["load", "-i", file], { timeoutMs: 600_000 });
  return [...r.stdout.matchAll(/^Loaded image(?: ID)?: (.+)$/gm)].map((m) => m[1]!.trim());
}

/** The fields of `docker image inspect` that tests use (the rest is kept, untyped). */
export interface DockerImageInspect {
  Id: string;
  RepoTags: string[] | null;
  RepoDigests: string[] | null;
  Parent: string;
  Created: string;
  Size: number;
  Architecture: string;
  Os: string;
  Config: {
    Env?: string[] | null;
    Cmd?: string[] | null;
    Entrypoint?: string[] | null;
    WorkingDir?: string;
    User?: string;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, object> | null;
    [k: string]: unknown;
  } | null;
  ContainerConfig?: Record<string, unknown> | null;
  RootFS: { Type: string; Layers?: string[] };
  [k: string]: unknown;
}

/** Parsed `docker image inspect REF` (one image). */
export async function inspect(peer: DockerPeer, ref: string): Promise<DockerImageInspect> {
  const r = await peer.run(["image", "inspect", ref], { timeoutMs: 60_000 });
  const arr = JSON.parse(r.stdout) as DockerImageInspect[];
  if (!Array.isArray(arr) || arr.length !== 1) {
    throw new PeerCommandError(`docker image inspect ${ref}: expected one image, got ${r.stdout.slice(0, 200)}`);
  }
  return arr[0]!;
}

/** One row of `docker history --no-trunc` (newest first, as docker prints it). */
export interface DockerHistoryEntry {
  /** Image ID of that step, or `<missing>`. */
  ID: string;
  CreatedAt: string;
  CreatedBy: string;
  /** Human-readable ("12.3kB"); use sizeBytes. */
  Size: string;
  /** Layer size in bytes (from `docker history --format {{json .}} --human=false`). */
  sizeBytes: number;
  Comment: string;
}

/** Parsed `docker history --no-trunc --human=false REF`, newest first. */
export async function history(peer: DockerPeer, ref: string): Promise<DockerHistoryEntry[]> {
  const r = await peer.run(["history", "--no-trunc", "--human=false", "--format", "{{json .}}", ref], {
    timeoutMs: 60_000,
  });
  return r.stdout
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => {
      const o = JSON.parse(l) as Omit<DockerHistoryEntry, "sizeBytes">;
      return { ...o, sizeBytes: Number(o.Size) };
    });
}
