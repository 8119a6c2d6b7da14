import cliProgress from "cli-progress";
import { humanSize } from "./format.js";

/** How progress is shown: a live display, plain lines, JSON lines, or nothing. */
export type ProgressMode = "tty" | "plain" | "json" | "none";

/** Final state of one item of work. */
export type ItemStatus = "done" | "exists" | "skipped" | "failed";

/**
 * Progress of long work (load, save, docker push/pull, fsck, prune), per item
 * (usually a layer) and in total. Written to stderr, never to stdout.
 */
export interface Progress {
  /** An item starts; `total` bytes when known. */
  start(id: string, label: string, total?: number): void;
  /** Bytes done so far for an item; `label` replaces its label. */
  update(id: string, current: number, label?: string): void;
  /** An item ends. */
  finish(id: string, status: ItemStatus, detail?: string): void;
  /** A free-form line (warnings, steps). */
  note(line: string): void;
  /** The closing summary line. */
  summary(line: string, data?: Record<string, unknown>): void;
  /** Tear down the display. */
  stop(): void;
}

/** Pick the mode: explicit flag, else tty when stderr is a terminal, else plain. */
export function progressMode(flag: string | undefined, quiet: boolean, stream: NodeJS.WriteStream = process.stderr): ProgressMode {
  if (quiet) return "none";
  if (flag === undefined || flag === "auto") return stream.isTTY ? "tty" : "plain";
  if (flag === "tty" || flag === "plain" || flag === "json" || flag === "none") return flag;
  throw new Error(`invalid --progress ${JSON.stringify(flag)} (want auto, tty, plain, json or none)`);
}

interface Item {
  label: string;
  total: number | undefined;
  current: number;
  bar?: cliProgress.SingleBar;
  /** When the last JSON progress event was written. */
  last?: number;
}

const WORDS: Record<ItemStatus, string> = { done: "Done", exists: "Exists", skipped: "Skipped", failed: "Failed" };

/** Create a progress reporter writing to `stream` (stderr). */
export function createProgress(mode: ProgressMode, stream: NodeJS.WriteStream = process.stderr): Progress {
  const items = new Map<string, Item>();
  const write = (s: string) => {
    stream.write(s);
  };
  if (mode === "none") {
    return { start() {}, update() {}, finish() {}, note() {}, summary() {}, stop() {} };
  }
  if (mode === "json") {
    const emit = (o: Record<string, unknown>) => write(`${JSON.stringify(o)}\n`);
    return {
      start(id, label, total) {
        // last: 0, so the first bytes are reported at once, then at most four events a second
        items.set(id, { label, total, current: 0, last: 0 });
        emit({ event: "start", id, label, ...(total !== undefined ? { total } : {}) });
      },
      update(id, current, label) {
        const it = items.get(id) ?? { label: id, total: undefined, current: 0, last: 0 };
        it.current = current;
        if (label) it.label = label;
        items.set(id, it);
        // at most four progress events a second per item
        const now = Date.now();
        if (now - (it.last ?? 0) >= 250) {
          it.last = now;
          emit({ event: "progress", id, label: it.label, current, ...(it.total !== undefined ? { total: it.total } : {}) });
        }
      },
      finish: (id, status, detail) => {
        const it = items.get(id);
        emit({ event: "finish", id, ...(it ? { label: it.label } : {}), status, bytes: it?.current ?? 0, ...(detail ? { detail } : {}) });
      },
      note: (line) => emit({ event: "note", message: line }),
      summary: (line, data) => emit({ event: "summary", message: line, ...data }),
      stop() {},
    };
  }
  if (mode === "plain") {
    // one line per finished item; nothing that needs a terminal
    return {
      start(id, label, total) {
        items.set(id, { label, total, current: 0 });
      },
      update(id, current, label) {
        const it = items.get(id);
        if (!it) return;
        it.current = current;
        if (label) it.label = label;
      },
      finish(id, status, detail) {
        const it = items.get(id);
        const size = it && it.current > 0 ? ` ${humanSize(it.current)}` : "";
        write(`${it?.label ?? id}: ${WORDS[status]}${size}${detail ? ` (${detail})` : ""}\n`);
        items.delete(id);
      },
      note: (line) => write(`${line}\n`),
      summary: (line) => write(`${line}\n`),
      stop() {},
    };
  }
  // tty: one live bar per item (cli-progress MultiBar), finished bars stay on screen
  const multi = new cliProgress.MultiBar(
    {
      stream,
      clearOnComplete: false,
      hideCursor: true,
      format: (_opts, params, payload: { label: string; status: string; known: boolean }) => {
        const total = payload.known ? params.total : 0;
        const width = 24;
        const filled = total ? Math.min(width, Math.round((params.value / total) * width)) : 0;
        const bar = total ? `[${"=".repeat(Math.max(0, filled - 1))}${filled ? ">" : ""}${" ".repeat(width - filled)}] ` : "";
        const bytes = total ? `${humanSize(params.value)}/${humanSize(total)}` : humanSize(params.value);
        return `${payload.label}: ${payload.status.padEnd(11)} ${bar}${bytes}`;
      },
      forceRedraw: true,
      noTTYOutput: false,
      fps: 10,
    },
    cliProgress.Presets.legacy,
  );
  let stopped = false;
  const stopAll = () => {
    if (stopped) return;
    stopped = true;
    // one last redraw writes the lines note() queued since the previous one (stop() alone drops them)
    multi.update();
    multi.stop();
  };
  return {
    start(id, label, total) {
      const bar = multi.create(total ?? 1, 0, { label, status: "Working", known: total !== undefined });
      items.set(id, { label, total, current: 0, bar });
    },
    update(id, current, label) {
      const it = items.get(id);
      if (!it?.bar) return;
      it.current = current;
      if (label) it.label = label;
      if (it.total === undefined && current > 0) it.bar.setTotal(current);
      it.bar.update(current, { label: it.label, status: "Working", known: it.total !== undefined });
    },
    finish(id, status, detail) {
      const it = items.get(id);
      if (!it?.bar) return;
      const final = it.total ?? it.current;
      if (it.total === undefined) it.bar.setTotal(Math.max(1, final));
      it.bar.update(final, { label: it.label, status: detail ? `${WORDS[status]} ${detail}` : WORDS[status], known: it.total !== undefined });
      it.bar.stop();
    },
    note(line) {
      multi.log(`${line}\n`);
    },
    summary(line) {
      stopAll();
      write(`${line}\n`);
    },
    stop: stopAll,
  };
}
