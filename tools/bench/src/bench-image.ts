/**
 * The registry benches' image (`registry.ts`, `serve-registry.ts`): a
 * docker-archive written here, no daemon build, so no layer is shared with
 * any other image in the shared dockerd. 30 % random bytes, 25 % text, 10 %
 * 4 KiB text files, 20 % random, 15 % text, a layer each — the mix of the
 * archive suite's image; the random bytes are new for each archive and the
 * text lines carry a salt. Made once per size and kept in the work dir.
 * @module
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { sh } from "./archive.js";

const MiB = 1 << 20;

const MTIME = 1_700_000_000;

function tarHeader(name: string, size: number, type: "0" | "5"): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, "utf8");
  h.write(type === "5" ? "0000755\0" : "0000644\0", 100);
  h.write("0000000\0", 108);
  h.write("0000000\0", 116);
  h.write(`${size.toString(8).padStart(11, "0")}\0`, 124);
  h.write(`${MTIME.toString(8).padStart(11, "0")}\0`, 136);
  h.write("        ", 148);
  h.write(type, 156);
  h.write("ustar\0", 257);
  h.write("00", 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return h;
}

/** A layer tar written synchronously, hashed as it goes (its DiffID). */
class LayerTar {
  private readonly fd: number;
  private readonly hash = createHash("sha256");
  size = 0;
  constructor(readonly path: string) {
    this.fd = openSync(path, "w");
  }
  private put(b: Buffer): void {
    this.hash.update(b);
    writeSync(this.fd, b);
    this.size += b.length;
  }
  dir(name: string): void {
    this.put(tarHeader(`${name}/`, 0, "5"));
  }
  /** A file of `size` bytes, made by `chunk(bytesLeft)` (each call returns at most that many). */
  file(name: string, size: number, chunk: (left: number) => Buffer): void {
    this.put(tarHeader(name, size, "0"));
    for (let left = size; left > 0; ) {
      const c = chunk(left);
      this.put(c);
      left -= c.length;
    }
    if (size % 512) this.put(Buffer.alloc(512 - (size % 512)));
  }
  end(): { diffId: string; size: number } {
    this.put(Buffer.alloc(1024));
    closeSync(this.fd);
    return { diffId: `sha256:${this.hash.digest("hex")}`, size: this.size };
  }
}

/** What {@link benchArchive} made. */
export interface BenchImage {
  file: string;
  /** The image ID (config digest). */
  id: string;
  tag: string;
  /** Bytes of the layer tars (the image's uncompressed size). */
  bytes: number;
  diffIds: string[];
  layers: number;
}

/** The bench image as a docker-archive (made once per size, kept in the work dir). */
export function benchArchive(work: string, mb: number): BenchImage {
  const marker = join(work, `image-${mb}mb.json`);
  if (existsSync(marker)) {
    const done = JSON.parse(readFileSync(marker, "utf8")) as BenchImage;
    if (existsSync(done.file) && Array.isArray(done.diffIds)) return done;
  }
  const stage = join(work, `image-${mb}mb.d`);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  const salt = randomBytes(8).toString("hex");
  const random = (left: number) => randomBytes(Math.min(left, MiB));
  const textChunk = (line: string) => {
    const block = Buffer.from(line.repeat(Math.floor(MiB / line.length)));
    return (left: number) => (left >= block.length ? block : block.subarray(0, left));
  };
  const text = `berth benchmark compressible text line 0123456789 the quick brown fox jumps over the lazy dog ${salt}\n`;
  const part = (f: number) => Math.round(mb * f * MiB);
  const recipe: Array<{ what: string; write(t: LayerTar): void }> = [
    { what: "random1.bin (30 %)", write: (t) => t.file("random1.bin", part(0.3), random) },
    { what: "text1.txt (25 %)", write: (t) => t.file("text1.txt", part(0.25), textChunk(text)) },
    {
      what: "many/ (10 %, 4 KiB text files)",
      write: (t) => {
        t.dir("many");
        const files = Math.max(1, Math.round(part(0.1) / 4096));
        for (let i = 0; i < files; i++) {
          if (i % 1000 === 0) t.dir(`many/d${i / 1000}`);
          // 4 KiB of base64 lines (76 characters and a newline), as `base64` writes them
          const b64 = randomBytes(3072).toString("base64");
          const lines = (b64.match(/.{1,76}/g) ?? []).join("\n").slice(0, 4095);
          t.file(`many/d${Math.floor(i / 1000)}/f${String(i).padStart(6, "0")}`, 4096, () => Buffer.from(`${lines}\n`));
        }
      },
    },
    { what: "random2.bin (20 %)", write: (t) => t.file("random2.bin", part(0.2), random) },
    { what: "text2.txt (15 %)", write: (t) => t.file("text2.txt", part(0.15), textChunk(`${text.trimEnd()} 2\n`)) },
  ];
  const layers: Array<{ diffId: string; size: number; dir: string }> = [];
  recipe.forEach((r, i) => {
    const tmp = join(stage, `layer-${i}.tar`);
    const t = new LayerTar(tmp);
    r.write(t);
    const { diffId, size } = t.end();
    const dir = diffId.slice(7);
    mkdirSync(join(stage, dir));
    execFileSync("mv", [tmp, join(stage, dir, "layer.tar")]);
    layers.push({ diffId, size, dir });
  });
  const arch = ({ x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x" } as Record<string, string>)[process.arch] ?? process.arch;
  const created = new Date(MTIME * 1000).toISOString();
  const config = Buffer.from(
    JSON.stringify({
      architecture: arch,
      os: "linux",
      created,
      config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/random1.bin"] },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      history: recipe.map((r) => ({ created, created_by: `berth bench registry: ${r.what}` })),
    }),
  );
  const id = `sha256:${createHash("sha256").update(config).digest("hex")}`;
  const tag = `berth-bench/registry:${mb}mb`;
  writeFileSync(join(stage, `${id.slice(7)}.json`), config);
  writeFileSync(join(stage, "manifest.json"), JSON.stringify([{ Config: `${id.slice(7)}.json`, RepoTags: [tag], Layers: layers.map((l) => `${l.dir}/layer.tar`) }]));
  const file = join(work, `image-${mb}mb.tar`);
  // docker save's order: the layer directories, the config, manifest.json
  sh("tar", ["-cf", file, "-C", stage, ...layers.map((l) => l.dir), `${id.slice(7)}.json`, "manifest.json"]);
  rmSync(stage, { recursive: true, force: true });
  const image: BenchImage = { file, id, tag, bytes: layers.reduce((n, l) => n + l.size, 0), layers: layers.length, diffIds: layers.map((l) => l.diffId) };
  writeFileSync(marker, JSON.stringify(image));
  return image;
}
