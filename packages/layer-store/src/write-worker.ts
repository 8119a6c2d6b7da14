/**
 * A worker thread of the off-thread writer ({@link openOffThreadWriter}):
 * for each open ingest file it is given, hashes the pieces it receives and
 * writes them at their offsets, synchronously, with the content store's early
 * write-back; `finish` answers with the digest and size. Messages of one
 * writer arrive in order; pieces come transferred (no copy) and go back the
 * same way once written, to be filled again.
 * @module
 */
import { closeSync, fdatasync, openSync, writeSync } from "node:fs";
import { parentPort } from "node:worker_threads";
import { type Sha256Hash, sha256 } from "@berth/digest";
import type { WriteReply, WriteRequest } from "./offthread.js";
import { EARLY_SYNC } from "./poswriter.js";
import { toWire } from "./threads.js";

interface Open {
  fd: number;
  hash: Sha256Hash;
  pos: number;
  /** The early write-back in progress. */
  syncing: Promise<void> | undefined;
}

const files = new Map<number, Open>();
const reply = (m: WriteReply) => parentPort!.postMessage(m);

/** Close a file once its write-back settled (the commit's fsync reports write-back errors). */
async function close(f: Open): Promise<void> {
  await f.syncing;
  closeSync(f.fd);
}

function write(id: number, f: Open, piece: ArrayBuffer, length: number): void {
  const bytes = new Uint8Array(piece, 0, length);
  f.hash.update(bytes);
  for (let off = 0; off < bytes.length; ) off += writeSync(f.fd, bytes, off, bytes.length - off, f.pos + off);
  const before = f.pos;
  f.pos += bytes.length;
  if (!f.syncing && Math.floor(f.pos / EARLY_SYNC) > Math.floor(before / EARLY_SYNC)) {
    const fd = f.fd;
    f.syncing = new Promise<void>((resolve) => fdatasync(fd, () => resolve())).then(() => {
      f.syncing = undefined;
    });
  }
  // the piece goes back to be filled again: a writer's memory stays its few pieces
  parentPort!.postMessage({ id, written: f.pos, piece } satisfies WriteReply, [piece]);
}

async function handle(m: WriteRequest): Promise<void> {
  if (m.op === "open") {
    files.set(m.id, { fd: openSync(m.path, "r+"), hash: sha256.create(), pos: 0, syncing: undefined });
    return;
  }
  const f = files.get(m.id);
  if (!f) return; // failed or closed before: the writer knows
  if (m.op === "write") {
    write(m.id, f, m.piece, m.length);
    return;
  }
  files.delete(m.id);
  if (m.op === "finish") {
    await close(f);
    reply({ id: m.id, digest: f.hash.digest(), size: f.pos });
  } else {
    f.hash.destroy();
    await close(f);
  }
}

parentPort!.on("message", (m: WriteRequest) => {
  handle(m).catch((err: unknown) => {
    const f = files.get(m.id);
    if (f) {
      files.delete(m.id);
      f.hash.destroy();
      close(f).catch(() => {});
    }
    reply({ id: m.id, error: toWire(err) });
  });
});
