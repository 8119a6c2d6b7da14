import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, normalize, isAbsolute } from "node:path";
import { findCommand } from "./commands.js";
import type { DockerPeer } from "./dockerd.js";
import { peersDir } from "./dockerd.js";
import { PeerCommandError, PeerUnavailableError } from "./errors.js";
import { execOk } from "./exec.js";
import { withLock } from "./proc.js";

/** Default tag of the busybox base image. */
export const BUSYBOX_TAG = "berth-test/busybox:1";

/** Image ID (`sha256:…`) of `ref` in the daemon, or undefined when it does not exist. */
export async function imageId(peer: DockerPeer, ref: string): Promise<string | undefined> {
  const r = await peer.docker(["image", "inspect", "--format", "{{.Id}}", ref], { timeoutMs: 60_000 });
  if (r.code !== 0) {
    if (/no such image/i.test(r.stderr)) return undefined;
    throw new PeerCommandError(`docker image inspect ${ref} failed: ${r.stderr.trim()} (daemon log: ${peer.logFile})`);
  }
  return r.stdout.trim();
}

function lockName(tag: string): string {
  return tag.replace(/[^A-Za-z0-9_.-]/g, "_");
}

/**
 * Writes a rootfs made of Debian's static busybox (`/bin/busybox` from
 * busybox-static) with a symlink per applet in /bin (`sh`, `true`, `echo`, `cat`,
 * `ls`, …, from `busybox --list`), `/tmp` (1777), `/etc` with passwd/group,
 * `/root`. File times are fixed, so the tar made from it is reproducible.
 */
export async function writeBusyboxRootfs(dir: string): Promise<void> {
  const busybox = "/bin/busybox";
  if (!(await findCommand(busybox))) {
    throw new PeerUnavailableError("/bin/busybox is missing (apt-get install -y busybox-static)");
  }
  const file = await execOk("file", ["-b", busybox]).catch(() => undefined);
  if (file && !/statically linked|static-pie/.test(file.stdout)) {
    throw new PeerUnavailableError(`/bin/busybox is not static (${file.stdout.trim()}); apt-get install -y busybox-static`);
  }
  await mkdir(join(dir, "bin"), { recursive: true });
  await mkdir(join(dir, "etc"), { recursive: true });
  await mkdir(join(dir, "root"), { recursive: true });
  await mkdir(join(dir, "tmp"), { recursive: true });
  await chmod(join(dir, "tmp"), 0o1777);
  await copyFile(busybox, join(dir, "bin", "busybox"));
  await chmod(join(dir, "bin", "busybox"), 0o755);
  const list = await execOk(busybox, ["--list"]);
  for (const name of list.stdout.split("\n").map((s) => s.trim())) {
    if (!name || name === "busybox" || name.includes("/") || name.startsWith(".")) continue;
    await symlink("busybox", join(dir, "bin", name));
  }
  await writeFile(join(dir, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
  await writeFile(join(dir, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n");
}

/**
 * Imports a static-busybox rootfs ({@link writeBusyboxRootfs}) as image `tag`
 * (`tar -c … | docker import - TAG`) and returns its ID. Idempotent: when `tag`
 * exists it is reused; a lock keeps concurrent test processes from importing twice.
 */
export async function busyboxBase(peer: DockerPeer, tag: string = BUSYBOX_TAG): Promise<string> {
  const existing = await imageId(peer, tag);
  if (existing) return existing;
  return withLock(join(peersDir(), "locks", `image-${lockName(tag)}.lock`), 300_000, async () => {
    const again = await imageId(peer, tag);
    if (again) return again;
    const work = await mkdtemp(join(tmpdir(), "berth-busybox-"));
    try {
      const rootfs = join(work, "rootfs");
      await writeBusyboxRootfs(rootfs);
      const tarFile = join(work, "rootfs.tar");
      await execOk(
        "tar",
        [
          "--sort=name",
          "--mtime=@0",
          "--owner=0",
          "--group=0",
          "--numeric-owner",
          "-C",
          rootfs,
          "-cf",
          tarFile,
          ".",
        ],
        { timeoutMs: 60_000 },
      );
      const r = await peer.run(["import", tarFile, tag], { timeoutMs: 120_000 });
      const id = r.stdout.trim();
      return (await imageId(peer, tag)) ?? id;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}

/** One file of a build context: its bytes, optional mode and mtime. */
export interface ContextFile {
  content: string | Uint8Array;
  /** File mode, e.g. 0o755. Default 0o644. */
  mode?: number;
  /** Modification time (Date or seconds since the epoch). */
  mtime?: Date | number;
}

/** Options of {@link buildImage}. */
export interface BuildImageOptions {
  /** Dockerfile text. */
  dockerfile: string;
  /** Files of the build context by relative path (directories are created). */
  files?: Record<string, string | Uint8Array | ContextFile>;
  /** Tag for the result. */
  tag: string;
  /** `--build-arg NAME=VALUE` for each entry. */
  buildArgs?: Record<string, string>;
  /** Use the daemon's BuildKit (`DOCKER_BUILDKIT=1`, `--network none`). Default false: classic builder. */
  buildkit?: boolean;
  /** `--cache-from` for each entry. */
  cacheFrom?: string[];
  /** More arguments for `docker build`, before the context path. */
  extraArgs?: string[];
  /** Timeout of the build. Default 300 000 ms. */
  timeoutMs?: number;
}

/** Result of {@link buildImage}. */
export interface BuiltImage {
  /** Image ID (`sha256:…`) of `tag` after the build. */
  id: string;
  /** Build output (stdout and stderr interleaved): "Using cache" lines, step IDs. */
  output: string;
}

/**
 * Writes a build context into a temp dir and runs `docker build -t TAG` on it,
 * with the classic builder (`DOCKER_BUILDKIT=0`) unless `buildkit` is true.
 * Rejects with PeerCommandError (build output in the message) when the build fails.
 */
export async function buildImage(peer: DockerPeer, options: BuildImageOptions): Promise<BuiltImage> {
  const ctx = await mkdtemp(join(tmpdir(), "berth-build-"));
  try {
    await writeFile(join(ctx, "Dockerfile"), options.dockerfile);
    for (const [rel, spec] of Object.entries(options.files ?? {})) {
      const norm = normalize(rel);
      if (isAbsolute(norm) || norm.startsWith("..") || norm === "Dockerfile") {
        throw new PeerCommandError(`buildImage: bad context file name ${JSON.stringify(rel)}`);
      }
      const path = join(ctx, norm);
      await mkdir(dirname(path), { recursive: true });
      const f: ContextFile = typeof spec === "string" || spec instanceof Uint8Array ? { content: spec } : spec;
      await writeFile(path, f.content);
      await chmod(path, f.mode ?? 0o644);
      if (f.mtime !== undefined) await utimes(path, f.mtime, f.mtime);
    }
    const args = ["build", "-t", options.tag];
    for (const [k, v] of Object.entries(options.buildArgs ?? {})) args.push("--build-arg", `${k}=${v}`);
    for (const c of options.cacheFrom ?? []) args.push("--cache-from", c);
    if (options.buildkit) args.push("--network", "none", "--progress", "plain");
    // The classic builder keeps a failed step's container unless told otherwise; left there,
    // each one costs the shared daemon a stale network sandbox to clean up at its next start.
    else args.push("--force-rm");
    args.push(...(options.extraArgs ?? []), ctx);
    const r = await peer.run(args, {
      env: { DOCKER_BUILDKIT: options.buildkit ? "1" : "0" },
      timeoutMs: options.timeoutMs ?? 300_000,
    });
    const id = await imageId(peer, options.tag);
    if (!id) throw new PeerCommandError(`docker build finished but ${options.tag} does not exist:\n${r.output}`);
    return { id, output: r.output };
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}
