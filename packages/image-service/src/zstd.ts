/**
 * zstd for pushing layers: Node's own `zlib.createZstdCompress` where the
 * runtime has it (Node 22.15 and later), else the `zstd` program (Debian's
 * zstd; level 3, zstd's default) fed through a pipe — Node 20 has no zstd
 * encoder, and the small npm ones are WebAssembly builds that compress a
 * whole buffer at a time. Both give the same bytes for the same input and
 * level on every run, which the blob-info cache relies on.
 * @module
 */
import { spawn } from "node:child_process";
import { pipeline, Readable } from "node:stream";
import * as zlib from "node:zlib";
import { programVersion } from "@berth/cache";

/** A layer tar's bytes, compressed. */
export type Compress = (tar: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>;

/** Node's zstd encoder, streamed. */
function nodeZstd(create: () => NodeJS.ReadWriteStream): Compress {
  return (tar) => {
    const out = create();
    pipeline(Readable.from(tar), out, () => undefined); // an error of either ends the other, and the reader sees it
    return out as unknown as AsyncIterable<Uint8Array>;
  };
}

/** The `zstd` program: the tar on its stdin, the frame from its stdout; a failure of either side fails the stream. */
async function* programZstd(tar: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const child = spawn("zstd", ["-q", "-3", "-c", "-"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString();
  });
  const exited = new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`zstd ${signal ?? `exited with ${code}`}${stderr.trim() ? `: ${stderr.trim().split("\n")[0]}` : ""}`)),
    );
  });
  exited.catch(() => undefined);
  let feedError: unknown;
  const feeding = new Promise<void>((resolve) =>
    pipeline(Readable.from(tar), child.stdin, (err) => {
      feedError = err ?? undefined;
      resolve();
    }),
  );
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk;
    await feeding;
    if (feedError) throw feedError;
    await exited;
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

/** The zstd compressor of this runtime, or undefined when it has none (no Node zstd, no `zstd` program). */
export async function zstdCompressor(): Promise<Compress | undefined> {
  const create = (zlib as { createZstdCompress?: () => NodeJS.ReadWriteStream }).createZstdCompress;
  if (create) return nodeZstd(create);
  return (await programVersion("zstd")) !== undefined ? programZstd : undefined;
}
