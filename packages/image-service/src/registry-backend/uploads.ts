/**
 * Upload sessions: each one a content-store ingest (`store.content.writer`:
 * hashed while written, fsynced, verified and linked into `blobs/` at commit)
 * under a lease of its own, so the blob it commits stays safe from GC until
 * the repository's record names it. Sessions live in this process: a server
 * restart forgets them (the client starts again; the ingest file of the dead
 * process is GC's). A session idle longer than the timeout is discarded.
 * @module
 */
import { randomBytes } from "node:crypto";
import { type Digest, digestAlgorithm, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "@berth/digest";
import type { Store } from "@berth/image-store";
import type { BlobWriter, CommitResult, Lease } from "@berth/layer-store";
import { REGISTRY_ERROR_CODES as C } from "../errors.js";
import type { AppendRequest, UploadStatus } from "./types.js";

interface Session {
  id: string;
  /** The store repository. */
  name: string;
  writer: BlobWriter;
  lease: Lease;
  busy: boolean;
  touched: number;
}

/** Upload sessions of one store (see the module doc). */
export class UploadSessions {
  readonly #sessions = new Map<string, Session>();

  constructor(
    readonly store: Store,
    readonly idleTimeoutMs: number,
  ) {}

  /** Start a session in store repository `name`. */
  async create(name: string): Promise<UploadStatus> {
    const lease = await this.store.lease();
    let writer: BlobWriter;
    try {
      writer = await this.store.content.writer({ lease });
    } catch (err) {
      await lease.release();
      throw err;
    }
    const id = randomBytes(18).toString("base64url");
    this.#sessions.set(id, { id, name, writer, lease, busy: false, touched: Date.now() });
    return { id, offset: 0 };
  }

  #session(name: string, id: string): Session {
    const s = this.#sessions.get(id);
    if (!s || s.name !== name) throw new NotFoundError(`blob upload ${id} unknown`, { code: C.uploadUnknown, details: { id } });
    s.touched = Date.now();
    return s;
  }

  /** The state of a session. */
  status(name: string, id: string): UploadStatus {
    const s = this.#session(name, id);
    return { id, offset: s.writer.written };
  }

  /** Append a chunk at the session's offset (see `RegistryBackend.appendUpload`). */
  async append(name: string, id: string, chunk: AppendRequest): Promise<UploadStatus> {
    const s = this.#session(name, id);
    const offset = s.writer.written;
    if (s.busy || (chunk.start !== undefined && chunk.start !== offset)) {
      throw new FailedPreconditionError(`chunk starts at ${chunk.start ?? "?"} but upload ${id} is at ${offset}`, {
        code: C.uploadOffset,
        details: { offset },
      });
    }
    s.busy = true;
    try {
      await writeBody(s.writer, chunk.body);
    } finally {
      s.busy = false;
      s.touched = Date.now();
    }
    return { id, offset: s.writer.written };
  }

  /**
   * Commit a session as blob `digest` (verified), then run `record` while the
   * session's lease still protects the blob, then end the session. On a
   * mismatch nothing is visible and the session is gone.
   */
  async commit<T>(name: string, id: string, digest: Digest, record: (blob: CommitResult) => Promise<T>): Promise<T> {
    const s = this.#session(name, id);
    if (s.busy) throw new FailedPreconditionError(`upload ${id} is being written`, { code: C.uploadOffset, details: { offset: s.writer.written } });
    this.#sessions.delete(id);
    try {
      if (digestAlgorithm(digest) !== "sha256") {
        throw new InvalidArgumentError(`digest ${digest}: only sha256 is supported`, { code: "ERR_DIGEST_UNSUPPORTED", details: { digest } });
      }
      const blob = await s.writer.commit(undefined, digest);
      return await record(blob);
    } finally {
      await s.writer.abort().catch(() => {});
      await s.lease.release().catch(() => {});
    }
  }

  /** Discard a session and what it received. */
  async cancel(name: string, id: string): Promise<void> {
    const s = this.#session(name, id);
    await this.#end(s);
  }

  async #end(s: Session): Promise<void> {
    this.#sessions.delete(s.id);
    await s.writer.abort().catch(() => {});
    await s.lease.release().catch(() => {});
  }

  /** Discard sessions idle longer than the timeout (and not being written). Resolves with how many. */
  async sweep(now = Date.now()): Promise<number> {
    const idle = [...this.#sessions.values()].filter((s) => !s.busy && now - s.touched > this.idleTimeoutMs);
    for (const s of idle) await this.#end(s);
    return idle.length;
  }

  /** Discard every session. */
  async close(): Promise<void> {
    for (const s of [...this.#sessions.values()]) await this.#end(s);
  }
}

/** Pieces an upload body is gathered into before each write (a socket delivers 64 KiB at a time). */
const UPLOAD_PIECE = 1 << 20;
/** Writes of one upload in flight at once. */
const UPLOAD_WRITES = 4;

/**
 * Write a request body into the ingest: gathered into 1 MiB pieces and up to
 * four writes in flight (the writer hashes in call order and writes each piece
 * at its own offset), instead of one 64 KiB write awaited at a time — a
 * 256 MiB PATCH waited on 4,096 round trips to the thread pool. A body that
 * fails part way still has what came written (the client resumes from the
 * offset). Every write has settled when this returns or throws.
 */
async function writeBody(writer: BlobWriter, body: AsyncIterable<Uint8Array>): Promise<void> {
  const inFlight: Promise<void>[] = [];
  let parts: Uint8Array[] = [];
  let held = 0;
  const flush = () => {
    if (held === 0) return;
    const w = writer.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts, held));
    w.catch(() => {}); // a write that fails while an earlier one is awaited is seen below, not unhandled
    inFlight.push(w);
    parts = [];
    held = 0;
  };
  let stopped: { err: unknown } | undefined;
  try {
    for await (const c of body) {
      if (c.byteLength === 0) continue;
      parts.push(c);
      held += c.byteLength;
      if (held < UPLOAD_PIECE) continue;
      flush();
      if (inFlight.length >= UPLOAD_WRITES) await inFlight.shift();
    }
  } catch (err) {
    stopped = { err };
  }
  flush();
  const failed = (await Promise.allSettled(inFlight)).find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (stopped) throw stopped.err;
  if (failed) throw failed.reason;
}
