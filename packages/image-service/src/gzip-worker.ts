/**
 * A worker thread of the push's gzip (`gzip.ts`): compresses each block it is
 * sent ({@link compressBlock}) and checksums it (CRC-32), then sends the
 * compressed bytes and the block's own buffer back (both transferred, not
 * copied: the block is reused for the next read).
 * @module
 */
import { parentPort } from "node:worker_threads";
import * as zlib from "node:zlib";
// The modules alone: a worker loads these and should start fast.
import { toWire } from "@berth/layer-store/threads";
import { compressBlock } from "./gzip-block.js";
import type { GzipJob, GzipReply } from "./gzip.js";

/** `b` to hand over with its buffer: itself, unless that buffer may be Node's pool of small Buffers (then a copy). */
function own(b: Uint8Array): Uint8Array {
  return b.buffer.byteLength > Buffer.poolSize ? b : Uint8Array.from(b);
}

parentPort!.on("message", (job: GzipJob) => {
  let reply: GzipReply;
  try {
    const out = own(compressBlock(job.block, job.before, job.level));
    reply = { id: job.id, out, crc: zlib.crc32(job.block), block: job.block };
    parentPort!.postMessage(reply, [out.buffer as ArrayBuffer, job.block.buffer as ArrayBuffer]);
  } catch (err) {
    reply = { id: job.id, error: toWire(err), block: job.block };
    parentPort!.postMessage(reply, [job.block.buffer as ArrayBuffer]);
  }
});
