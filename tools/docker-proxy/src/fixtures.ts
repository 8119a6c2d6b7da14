/**
 * The images the recordings are made with, written as deterministic `docker
 * load` archives: the same bytes on every run, so dockerd and berth get
 * identical image IDs, DiffIDs, creation times and sizes, and the CLI output
 * of both can be compared with nothing but relative times normalised.
 *
 * `images.tar` (the starting state of every scenario):
 *
 * | image | parent | layers | tags | labels |
 * | --- | --- | --- | --- | --- |
 * | base | — | L1 | engine-rec/base:1, engine-rec/base:latest, localhost:5000/engine-rec/base:1 | org.example.engine=base |
 * | mid | base | L1 L2 | (none: an intermediate) | org.example.engine=base |
 * | app | mid | L1 L2 L3 | engine-rec/app:1, localhost:5000/x/y:z | org.example.engine=app |
 * | solo | — | L4 | engine-rec/solo:1 | org.example.engine=solo |
 * | dangling | — | L1 L5 | (none, no children) | org.example.engine=dangling |
 *
 * `load.tar`: engine-rec/loaded:1, two new layers of 384 KiB of
 * pseudo-random bytes (so a TTY load shows progress bars). `bad.tar`: not an
 * archive at all. `rootfs.tar`: base's layer, for `docker import`.
 *
 * `registryImage`: the same `loaded` image as a registry holds it (an image
 * manifest, the config, its layers gzipped by node:zlib), for the pull
 * scenarios: `seedRegistry` (registry.ts) uploads these bytes over plain
 * HTTP, so the registry's manifest digest is the same whether dockerd or
 * berth pulls it, in the recording and in the replay.
 * @module
 */
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";

const MTIME = new Date("2020-01-01T00:00:00Z");

interface FileSpec {
  name: string;
  /** Directory when undefined. */
  content?: Uint8Array | string;
  mode?: number;
}

async function tarOf(files: FileSpec[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((resolve, reject) => {
    p.on("end", () => resolve());
    p.on("error", reject);
  });
  for (const f of files) {
    const common = { mtime: MTIME, uid: 0, gid: 0, uname: "root", gname: "root" };
    if (f.content === undefined) p.entry({ ...common, name: f.name, type: "directory", mode: f.mode ?? 0o755 });
    else p.entry({ ...common, name: f.name, type: "file", mode: f.mode ?? 0o644 }, Buffer.from(f.content));
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** Deterministic pseudo-random bytes (xorshift32), so "random" layers are the same on every run. */
export function pseudoRandom(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  return out;
}

const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

interface ImageSpec {
  key: string;
  layers: Buffer[];
  parent?: string;
  tags: string[];
  created: string;
  labels: Record<string, string>;
  cmd: string[];
  /** History entries; a child repeats its parent's and adds exactly one (dockerd checks that on load). */
  history: HistoryEntry[];
}

interface HistoryEntry {
  by: string;
  at: string;
  comment?: string;
}

interface BuiltImage {
  key: string;
  id: string;
  config: Buffer;
  diffIds: string[];
  layers: Buffer[];
}

function configOf(spec: ImageSpec): Buffer {
  const diffIds = spec.layers.map((l) => `sha256:${sha(l)}`);
  const config = {
    architecture: "amd64",
    config: {
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      Cmd: spec.cmd,
      Labels: spec.labels,
      WorkingDir: "/",
    },
    created: spec.created,
    history: spec.history.map((h) => ({
      created: h.at,
      created_by: h.by,
      ...(h.comment ? { comment: h.comment } : {}),
      // a metadata step of the classic builder (two spaces after #(nop)) makes no layer
      ...(h.by.includes("#(nop)  ") ? { empty_layer: true } : {}),
    })),
    os: "linux",
    rootfs: { type: "layers", diff_ids: diffIds },
  };
  return Buffer.from(JSON.stringify(config));
}

async function archiveOf(specs: ImageSpec[]): Promise<{ tar: Buffer; images: BuiltImage[] }> {
  const built = new Map<string, BuiltImage>();
  const files: FileSpec[] = [];
  const seenLayers = new Set<string>();
  const manifest: Array<Record<string, unknown>> = [];
  for (const spec of specs) {
    const config = configOf(spec);
    const id = sha(config);
    const diffIds = spec.layers.map((l) => sha(l));
    built.set(spec.key, { key: spec.key, id: `sha256:${id}`, config, diffIds: diffIds.map((d) => `sha256:${d}`), layers: spec.layers });
    files.push({ name: `${id}.json`, content: config });
    spec.layers.forEach((layer, i) => {
      const d = diffIds[i]!;
      if (seenLayers.has(d)) return;
      seenLayers.add(d);
      files.push({ name: `${d}/` });
      files.push({ name: `${d}/layer.tar`, content: layer });
    });
    const parent = spec.parent ? built.get(spec.parent)?.id : undefined;
    manifest.push({
      Config: `${id}.json`,
      RepoTags: spec.tags.length ? spec.tags : null,
      Layers: diffIds.map((d) => `${d}/layer.tar`),
      ...(parent ? { Parent: parent } : {}),
    });
  }
  files.push({ name: "manifest.json", content: JSON.stringify(manifest) });
  return { tar: await tarOf(files), images: [...built.values()] };
}

/** An image as a registry holds it: its manifest and every blob (config and layers) by digest. */
export interface RegistryImage {
  /** The Docker image manifest (schema 2), as uploaded. */
  manifest: Buffer;
  mediaType: string;
  /** `sha256:…` of {@link manifest}. */
  digest: string;
  /** The config blob and the gzipped layers, by digest. */
  blobs: Map<string, Buffer>;
}

/** `image` as a registry holds it: layers gzipped (level 6, node:zlib, no name or time in the header: the same bytes every run). */
function registryImageOf(image: BuiltImage): RegistryImage {
  const blobs = new Map<string, Buffer>();
  const descriptor = (mediaType: string, bytes: Buffer) => {
    const digest = `sha256:${sha(bytes)}`;
    blobs.set(digest, bytes);
    return { mediaType, size: bytes.length, digest };
  };
  const config = descriptor("application/vnd.docker.container.image.v1+json", image.config);
  const layers = image.layers.map((l) => descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", gzipSync(l, { level: 6 })));
  const mediaType = "application/vnd.docker.distribution.manifest.v2+json";
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, config, layers }, null, 3));
  return { manifest, mediaType, digest: `sha256:${sha(manifest)}`, blobs };
}

/** What {@link writeFixtureArchives} wrote. */
export interface FixtureArchives {
  dir: string;
  /** `images.tar`, `load.tar`, `bad.tar`, `rootfs.tar` */
  images: string;
  load: string;
  bad: string;
  rootfs: string;
  /** Image IDs by key: base, mid, app, solo, dangling, loaded. */
  ids: Record<string, string>;
  /** The `loaded` image as a registry holds it (not written to `dir`: `seedRegistry` uploads it). */
  registryImage: RegistryImage;
}

/** Write the fixture archives into `dir` (same bytes every time). */
export async function writeFixtureArchives(dir: string): Promise<FixtureArchives> {
  await mkdir(dir, { recursive: true });
  const L1 = await tarOf([
    { name: "bin/" },
    { name: "bin/hello", content: "#!/bin/sh\necho hello from berth\n", mode: 0o755 },
    { name: "etc/" },
    { name: "etc/hostname", content: "berth\n" },
    { name: "etc/os-release", content: 'NAME="engine-rec"\nID=engine-rec\n' },
  ]);
  const L2 = await tarOf([{ name: "app/" }, { name: "app/data.txt", content: "d".repeat(1000) }]);
  const L3 = await tarOf([{ name: "app/run.sh", content: "#!/bin/sh\nexec /bin/hello\n", mode: 0o755 }]);
  const L4 = await tarOf([{ name: "solo/" }, { name: "solo/file", content: "s".repeat(2048) }]);
  const L5 = await tarOf([{ name: "tmp/" }, { name: "tmp/dangling", content: "x".repeat(512) }]);
  const label = (v: string) => ({ "org.example.engine": v });
  const base: ImageSpec = {
    key: "base",
    layers: [L1],
    tags: ["engine-rec/base:1", "engine-rec/base:latest", "localhost:5000/engine-rec/base:1"],
    created: "2020-01-01T00:00:00Z",
    labels: label("base"),
    cmd: ["/bin/hello"],
    history: [{ by: "/bin/sh -c #(nop) ADD file:base in / ", at: "2020-01-01T00:00:00Z", comment: "fixture" }],
  };
  const mid: ImageSpec = {
    ...base,
    key: "mid",
    layers: [L1, L2],
    parent: "base",
    tags: [],
    created: "2020-01-02T00:00:00Z",
    history: [...base.history, { by: "/bin/sh -c #(nop) COPY file:data in /app/data.txt ", at: "2020-01-02T00:00:00Z" }],
  };
  const app: ImageSpec = {
    key: "app",
    layers: [L1, L2, L3],
    parent: "mid",
    tags: ["engine-rec/app:1", "localhost:5000/x/y:z"],
    created: "2020-01-03T00:00:00Z",
    labels: label("app"),
    cmd: ["/app/run.sh"],
    history: [...mid.history, { by: "/bin/sh -c #(nop) COPY file:run in /app/run.sh ", at: "2020-01-03T00:00:00Z" }],
  };
  const solo: ImageSpec = {
    key: "solo",
    layers: [L4],
    tags: ["engine-rec/solo:1"],
    created: "2021-06-01T12:00:00Z",
    labels: label("solo"),
    cmd: ["/bin/sh"],
    history: [
      { by: "/bin/sh -c #(nop) ADD file:solo in / ", at: "2021-06-01T11:00:00Z" },
      { by: '/bin/sh -c #(nop)  CMD ["/bin/sh"]', at: "2021-06-01T12:00:00Z" },
    ],
  };
  const dangling: ImageSpec = {
    key: "dangling",
    layers: [L1, L5],
    tags: [],
    created: "2019-03-04T05:06:07Z",
    labels: label("dangling"),
    cmd: ["/bin/sh"],
    history: [
      { by: "/bin/sh -c #(nop) ADD file:base in / ", at: "2019-03-04T05:00:00Z" },
      { by: "/bin/sh -c echo x > /tmp/dangling", at: "2019-03-04T05:06:07Z" },
    ],
  };
  const loaded: ImageSpec = {
    key: "loaded",
    layers: [
      await tarOf([{ name: "data/" }, { name: "data/a.bin", content: pseudoRandom(384 << 10, 1) }]),
      await tarOf([{ name: "data/b.bin", content: pseudoRandom(384 << 10, 2) }]),
    ],
    tags: ["engine-rec/loaded:1"],
    created: "2022-02-02T02:02:02Z",
    labels: label("loaded"),
    cmd: ["/bin/sh"],
    history: [
      { by: "/bin/sh -c #(nop) ADD file:a in /data/a.bin ", at: "2022-02-02T02:00:00Z" },
      { by: "/bin/sh -c #(nop) ADD file:b in /data/b.bin ", at: "2022-02-02T02:02:02Z" },
    ],
  };
  const main = await archiveOf([base, mid, app, solo, dangling]);
  const extra = await archiveOf([loaded]);
  const out: FixtureArchives = {
    dir,
    images: join(dir, "images.tar"),
    load: join(dir, "load.tar"),
    bad: join(dir, "bad.tar"),
    rootfs: join(dir, "rootfs.tar"),
    ids: Object.fromEntries([...main.images, ...extra.images].map((i) => [i.key, i.id])),
    registryImage: registryImageOf(extra.images[0]!),
  };
  await writeFile(out.images, main.tar);
  await writeFile(out.load, extra.tar);
  await writeFile(out.bad, "this is not a tar archive\n".repeat(40));
  await writeFile(out.rootfs, L1);
  return out;
}
