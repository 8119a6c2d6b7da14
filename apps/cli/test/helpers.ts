import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { pack as tarPack } from "tar-stream";

/** The built CLI entry (turbo builds it before tests). */
export const BERTH = fileURLToPath(new URL("../dist/berth.js", import.meta.url));

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

/** Run `berth args...` as a real subprocess. */
export function berth(
  args: string[],
  opts: {
    root?: string;
    input?: string | Uint8Array;
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    /** Given the running process instead of ending its stdin (which it must then end or signal). */
    onSpawn?: (child: ChildProcess) => void;
  } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...opts.env };
    delete env.BERTH_ROOT;
    if (opts.root) env.BERTH_ROOT = opts.root;
    const child = spawn(process.execPath, [BERTH, ...args], { env, cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({
        code: code ?? (signal ? 128 : -1),
        stdout: stdoutBytes.toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        stdoutBytes,
      });
    });
    child.stdin.on("error", () => {});
    if (opts.onSpawn) opts.onSpawn(child);
    else if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** Run berth and fail the test with its stderr unless it exits 0. */
export async function berthOk(args: string[], opts: Parameters<typeof berth>[1] = {}): Promise<RunResult> {
  const r = await berth(args, opts);
  if (r.code !== 0) throw new Error(`berth ${args.join(" ")} exited ${r.code}:\n${r.stderr}`);
  return r;
}

/** A fresh temp directory, removed by the returned cleanup. */
export function tempDir(prefix = "berth-cli-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true, maxRetries: 5 }) };
}

/** Debian's busybox-static. */
export const BUSYBOX = "/bin/busybox";

/**
 * A small real root filesystem: a static busybox with `sh`, `ls`, `cat`
 * links (Debian's busybox-static), or a tiny script when it is missing.
 */
export function makeRootfs(dir: string): string {
  mkdirSync(join(dir, "bin"), { recursive: true });
  mkdirSync(join(dir, "etc"), { recursive: true });
  if (existsSync(BUSYBOX)) {
    copyFileSync(BUSYBOX, join(dir, "bin", "busybox"));
    for (const n of ["sh", "ls", "cat", "echo"]) symlinkSync("busybox", join(dir, "bin", n));
  } else {
    writeFileSync(join(dir, "bin", "sh"), "#!/nonexistent\n", { mode: 0o755 });
  }
  writeFileSync(join(dir, "etc", "hostname"), "berth\n");
  return dir;
}

/** A directory with a few files, to be a layer on top of a base. */
export function makeAppDir(dir: string, files: Record<string, string | Uint8Array>): string {
  for (const [name, content] of Object.entries(files)) {
    const p = join(dir, name);
    mkdirSync(join(p, ".."), { recursive: true });
    writeFileSync(p, content);
  }
  return dir;
}

/** One entry of a hand-made tar (tar-stream headers). */
export interface TarItem {
  name: string;
  content?: string | Uint8Array;
  type?: "file" | "directory" | "symlink" | "link";
  linkname?: string;
}

/** Build a tar in memory with tar-stream (small test archives only). */
export async function makeTar(items: TarItem[]): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on("data", (c: unknown) => chunks.push(c as Buffer));
    pack.on("end", () => resolve());
    pack.on("error", reject);
  });
  for (const it of items) {
    const type = it.type ?? "file";
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (type === "file") {
        const body = typeof it.content === "string" ? Buffer.from(it.content) : Buffer.from(it.content ?? new Uint8Array());
        pack.entry({ name: it.name, size: body.length, mode: 0o644, mtime: new Date(0) }, body, cb);
      } else {
        pack.entry({ name: it.name, type, linkname: it.linkname, mode: 0o755, mtime: new Date(0) }, cb);
      }
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** True when `s` holds an ANSI escape or other control character except newline and tab. */
export function hasControlChars(s: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point
  return /[\x00-\x08\x0b-\x1f\x7f]/.test(s);
}

/** The one-line error contract: a single `berth: …` line, no stack trace. */
export function expectOneErrorLine(stderr: string): string {
  const lines = stderr.trimEnd().split("\n").filter((l) => !l.startsWith("(run with --help"));
  if (lines.length !== 1) throw new Error(`expected one error line, got:\n${stderr}`);
  if (!lines[0]!.startsWith("berth: ")) throw new Error(`error line does not start with "berth: ": ${lines[0]}`);
  if (/\n\s+at /.test(stderr)) throw new Error(`stack trace printed:\n${stderr}`);
  return lines[0]!;
}

const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

/**
 * A BuildKit `type=local` cache as an OCI layout directory: one gzip layer of one file per entry of
 * `contents`, each on the one before, and a cacheconfig v0 record per layer (the first a base, each
 * next one a step on the record before). `form`: BuildKit's index form (an index listing the blobs
 * and the cacheconfig), or its image-manifest form (`image-manifest=true`: an OCI manifest whose
 * config is the cacheconfig), the one registries accept.
 */
export async function cacheLayout(
  dir: string,
  contents: (string | Uint8Array)[] = ["layer one\n".repeat(2000), "layer two\n".repeat(6000)],
  form: "index" | "image-manifest" = "index",
): Promise<{ keys: string[]; chainIDs: string[] }> {
  mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  const blob = (b: Uint8Array) => {
    const d = sha(b);
    writeFileSync(join(dir, "blobs", "sha256", d), b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const key = (s: string) => `sha256:${sha(`key:${s}`)}`;
  const GZ = "application/vnd.oci.image.layer.v1.tar+gzip";
  const layers: { blob: string; parent: number }[] = [];
  const records: { digest: string; layers: { layer: number; createdAt: string }[]; inputs?: { selector: string; link: number }[][] }[] = [];
  const descriptors: object[] = [];
  const keys: string[] = [];
  const chainIDs: string[] = [];
  for (const [i, content] of contents.entries()) {
    const raw = await makeTar([{ name: `f${i}.txt`, content }]);
    const g = blob(gzipSync(raw));
    const diffID = `sha256:${sha(raw)}`;
    chainIDs.push(i === 0 ? diffID : `sha256:${sha(`${chainIDs[i - 1]} ${diffID}`)}`);
    keys.push(key(i === 0 ? "base" : `run${i}`));
    layers.push({ blob: g.digest, parent: i - 1 });
    records.push({ digest: keys[i]!, layers: [{ layer: i, createdAt: "2024-01-01T00:00:00Z" }], ...(i > 0 ? { inputs: [[{ selector: "", link: i - 1 }]] } : {}) });
    descriptors.push({ mediaType: GZ, ...g, annotations: { "containerd.io/uncompressed": diffID } });
  }
  const c = blob(new TextEncoder().encode(JSON.stringify({ layers, records })));
  const cacheConfig = { mediaType: "application/vnd.buildkit.cacheconfig.v0", ...c };
  const mediaType = form === "index" ? "application/vnd.oci.image.index.v1+json" : "application/vnd.oci.image.manifest.v1+json";
  const doc =
    form === "index"
      ? { schemaVersion: 2, mediaType, manifests: [...descriptors, cacheConfig] }
      : { schemaVersion: 2, mediaType, config: cacheConfig, layers: descriptors };
  const top = blob(new TextEncoder().encode(JSON.stringify(doc)));
  writeFileSync(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType, ...top, annotations: { "org.opencontainers.image.ref.name": "latest" } }] }));
  return { keys, chainIDs };
}

/** Bytes in the partial-download files of a store root (what a killed pull keeps to resume). */
export function partialBytes(root: string): number {
  const dir = join(root, "cache", "registry", "partial");
  if (!existsSync(dir)) return 0;
  return readdirSync(dir)
    .filter((f) => /^[0-9a-f]{64}$/.test(f))
    .reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}
