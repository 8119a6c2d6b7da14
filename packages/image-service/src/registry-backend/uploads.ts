/**
 * Upload sessions: each one a content-store ingest (hashed and written on a
 * worker thread by `openOffThreadWriter`, so the server's thread only reads
 * sockets; fsynced, verified and linked into `blobs/` at commit)
 * under a lease of its own, so the blob it commits stays safe from GC until
 * the repository's record names it. Sessions live in this process: a server
 * restart forgets them (the client starts again; the ingest file of the dead
 * process is GC's). A session idle longer than the timeout is discarded.
 * @module
 */
import { randomBytes } from "node:crypto";
import { type Digest, digestAlgorithm, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "@berth/digest";
import type { Store } from "@berth/image-store";
import { type CommitResult, type Lease, type OffThreadWriter, openOffThreadWriter } from "@berth/layer-store";
import { REGISTRY_ERROR_CODES as C } from "../errors.js";
import type { AppendRequest, UploadStatus } from "./types.js";

interface Session {
  id: string;
  /** The store repository. */
  name: string;
  writer: OffThreadWriter;
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
    let writer: OffThreadWriter;
    try {
      writer = await openOffThreadWriter(this.store.content, { lease });
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

/**
 * Write a request body into the ingest. The writer gathers the socket's
 * 64 KiB chunks into 1 MiB pieces and hashes and writes them on a worker
 * thread, four pieces in flight (a 256 MiB PATCH used to wait on 4,096
 * thread-pool round trips, then on this thread's SHA-256). A body that fails
 * part way still has what came written (the client resumes from the offset):
 * the writer is flushed either way before this returns or throws.
 */
async function writeBody(writer: OffThreadWriter, body: AsyncIterable<Uint8Array>): Promise<void> {
  let stopped: { err: unknown } | undefined;
  try {
    for await (const c of body) if (c.byteLength > 0) await writer.write(c);
  } catch (err) {
    stopped = { err };
  }
  try {
    await writer.flush();
  } catch (err) {
    stopped ??= { err };
  }
  if (stopped) throw stopped.err;
}
