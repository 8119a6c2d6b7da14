/**
 * The metadata log of an in-memory store: the same state machine as the
 * on-disk journal (`meta.ts`), applied in memory, never persisted.
 * @module
 */
import type { MetaLog } from "./core.js";
import { type MetaProblem, MetaState, type Op } from "./meta.js";

/** Metadata of an in-memory store. @internal */
export class MemoryLog implements MetaLog {
  readonly state = new MetaState();
  readonly problems: MetaProblem[] = [];
  readonly journalPath = "memory:images";
  readonly dir = "memory:images";
  refresh(): void {}
  async append(ops: Op[]): Promise<void> {
    for (const op of ops) this.state.apply(op);
  }
  async compact(): Promise<void> {}
  shouldCompact(): boolean {
    return false;
  }
  close(): void {}
}
