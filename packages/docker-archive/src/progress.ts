/**
 * Progress of a load: the bytes the tar reader has passed, less the byte
 * ranges that worker threads are still reading (their bodies are skipped by
 * the reader, so "passed" would run ahead of the work done). Reports never go
 * backwards.
 * @module
 */
import type { LoadProgress } from "./load.js";
import type { ArchiveSourceInfo } from "./source.js";

/** A byte range of the archive file that a worker thread is reading. */
export interface PendingRange {
  start: number;
  end: number;
}

/** Turns reader positions and worker ranges into {@link LoadProgress} events. */
export class LoadProgressTracker {
  private readonly pending = new Set<PendingRange>();
  private reported = 0;

  /**
   * @param info the source's byte counter (`bytesRead` grows as the reader goes)
   * @param onProgress the caller's callback (none: nothing is computed)
   * @param total size of the source when it is a file
   */
  constructor(
    private readonly info: ArchiveSourceInfo,
    private readonly onProgress: ((p: LoadProgress) => void) | undefined,
    private readonly total: number | undefined,
  ) {}

  /** A worker starts reading `range`; the returned function says it is done. */
  pendingRange(range: PendingRange): () => void {
    this.pending.add(range);
    return () => this.pending.delete(range);
  }

  /** Report progress while `entry` is being read (`""` at the end). */
  report(entry: string): void {
    if (!this.onProgress) return;
    const read = this.info.bytesRead;
    let done = read;
    for (const r of this.pending) done -= Math.max(0, Math.min(r.end, read) - r.start);
    this.reported = Math.max(this.reported, done);
    this.onProgress({ bytesRead: this.reported, entry, ...(this.total !== undefined ? { total: this.total } : {}) });
  }
}
