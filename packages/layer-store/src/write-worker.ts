/**
 * A worker thread of the off-thread writer ({@link openOffThreadWriter}):
 * for each open ingest file it is given, hashes the pieces it receives
 * (unless the writer does: a scanning one, whose thread has less to do),
 * scans them when asked ({@link LayerScan}: compression, DiffID, tar check)
 * and writes them at their offsets, synchronously, with the content store's
 * early write-back; `finish` answers with the digest, the size and the
 * scan's facts. Messages of one writer arrive in order and are handled in
 * order; pieces come transferred (no copy) and go back the same way once
 * written, to be filled again.
 * @module
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { parentPort } from "node:worker_threads";
import { type Sha256Hash, sha256 } from "@berth/digest";
import type { WriteReply, WriteRequest } from "./offthread.js";
import { SyncWriteBack, writeBackDue } from "./poswriter.js";
import { LayerScan } from "./scan.js";
import { toWire } from "./threads.js";

interface Open {
  fd: number;
  hash: Sha256Hash | undefined;
  scan: LayerScan | undefined;
  pos: number;
  writeBack: SyncWriteBack;
  /** This file's messages, one after another (a scan may wait for its decompressor). */
  queue: Promise<void>;
  /** The last piece given to a gzip decompressor, kept until the next one shows it consumed. */
  held: ArrayBuffer | undefined;
}

const files = new Map<number, Open>();
const reply = (m: WriteReply, transfer?: ArrayBuffer[]) => parentPort!.postMessage(m, transfer);

/** Close a file once its write-back settled (the commit's fsync reports write-back errors). */
async function close(f: Open): Promise<void> {
  await f.writeBack.settled();
  closeSync(f.fd);
}

/**
 * The piece that may go back to be filled again once `piece` was scanned. A
 * decompressor may hold on to what it was given after taking it:
 * - the first piece (compression not known yet) and zstd's pieces go to the
 *   scan as copies;
 * - a gzip piece goes as it is and is kept ({@link Open.held}) until the next
 *   one was taken: Node's gunzip stream took that one only once its buffer had
 *   emptied (a piece of 1 MiB is over its 16 KiB high-water mark, so `push`
 *   waits for `drain`; a smaller one is taken at once only when nothing is
 *   left buffered), and a chunk it has finished is no longer referenced.
 *   Copying every piece instead let the worker's garbage grow a pull's memory
 *   by ~100 MiB.
 */
async function scanPiece(f: Open, piece: ArrayBuffer, bytes: Uint8Array): Promise<ArrayBuffer | undefined> {
  const scan = f.scan!;
  const whole = f.pos > 0 && scan.compression === "gzip";
  const pending = scan.push(whole ? bytes : bytes.slice());
  if (pending) await pending;
  if (!whole) return piece;
  const back = f.held;
  f.held = piece;
  return back;
}

async function write(id: number, f: Open, piece: ArrayBuffer, length: number): Promise<void> {
  const bytes = new Uint8Array(piece, 0, length);
  f.hash?.update(bytes);
  const back = f.scan ? await scanPiece(f, piece, bytes) : piece;
  for (let off = 0; off < bytes.length; ) off += writeSync(f.fd, bytes, off, bytes.length - off, f.pos + off);
  const before = f.pos;
  f.pos += bytes.length;
  if (writeBackDue(before, f.pos)) f.writeBack.start();
  // the piece goes back to be filled again: a writer's memory stays its few pieces
  reply({ id, written: f.pos, ...(back ? { piece: back } : {}) }, back ? [back] : []);
}

async function finish(id: number, f: Open): Promise<void> {
  const facts = f.scan ? await f.scan.finish() : undefined;
  await close(f);
  files.delete(id);
  let scan: Extract<WriteReply, { size: number }>["facts"];
  if (facts) {
    const { notTar, ...rest } = facts;
    scan = notTar ? { ...rest, notTar: toWire(notTar) } : rest;
  }
  reply({ id, ...(f.hash ? { digest: f.hash.digest() } : {}), size: f.pos, ...(scan ? { facts: scan } : {}) });
}

/** End a file after an error or an abort. */
function drop(id: number): void {
  const f = files.get(id);
  if (!f) return;
  files.delete(id);
  f.scan?.abort();
  f.hash?.destroy();
  close(f).catch(() => {});
}

parentPort!.on("message", (m: WriteRequest) => {
  if (m.op === "open") {
    try {
      const scan = m.scan ? new LayerScan(m.scan) : undefined;
      const fd = openSync(m.path, "r+");
      files.set(m.id, { fd, hash: m.hash ? sha256.create() : undefined, scan, pos: 0, writeBack: new SyncWriteBack(fd), queue: Promise.resolve(), held: undefined });
    } catch (err) {
      reply({ id: m.id, error: toWire(err) });
    }
    return;
  }
  const f = files.get(m.id);
  if (!f) {
    // failed or finished before (the writer knows): nothing more is written, say so to a close
    if (m.op === "close") reply({ id: m.id, closed: true });
    return;
  }
  const step =
    m.op === "write"
      ? () => write(m.id, f, m.piece, m.length)
      : m.op === "finish"
        ? () => finish(m.id, f)
        : async () => {
            drop(m.id);
            reply({ id: m.id, closed: true });
          };
  f.queue = f.queue.then(step).catch((err: unknown) => {
    if (!files.has(m.id)) return; // an earlier step failed and answered
    drop(m.id);
    reply({ id: m.id, error: toWire(err) });
  });
});
