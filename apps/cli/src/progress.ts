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
  /** Bytes done so far for an item. */
  update(id: string, current: number): void;
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
}

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
      start: (id, label, total) => emit({ event: "start", id, label, total }),
      update(id, current) {
        const it = items.get(id) ?? { label: id, total: undefined, current: 0 };
        it.current = current;
        items.set(id, it);
      },
      finish: (id, status, detail) => emit({ event: "finish", id, status, bytes: items.get(id)?.current, detail }),
      note: (line) => emit({ event: "note", message: line }),
      summary: (line, data) => emit({ event: "summary", message: line, ...data }),
      stop() {},
    };
  }
  if (mode === "plain") {
    return {
      start(id, label, total) {
        items.set(id, { label, total, current: 0 });
      },
      update(id, current) {
        const it = items.get(id);
        if (it) it.current = current;
      },
      finish(id, status, detail) {
        const it = items.get(id);
        const size = it && it.current > 0 ? ` ${humanSize(it.current)}` : "";
        write(`${it?.label ?? id}: ${status}${size}${detail ? ` (${detail})` : ""}\n`);
        items.delete(id);
      },
      note: (line) => write(`${line}\n`),
      summary: (line) => write(`${line}\n`),
      stop() {},
    };
  }
  // tty: one bar per item, live, via cli-progress
  const multi = new cliProgress.MultiBar(
    {
      stream,
      clearOnComplete: false,
      hideCursor: true,
      format: (_opts, params, payload: { label: string; status: string }) => {
        const total = params.total > 1 ? params.total : 0;
        const width = 24;
        const filled = total ? Math.round((params.value / total) * width) : 0;
        const bar = total ? `[${"=".repeat(Math.max(0, filled - 1))}${filled ? ">" : ""}${" ".repeat(width - filled)}]` : "";
        const bytes = total ? `${humanSize(params.value)}/${humanSize(total)}` : humanSize(params.value);
        return `${payload.label}: ${payload.status.padEnd(11)} ${bar} ${bytes}`;
      },
      forceRedraw: true,
      noTTYOutput: false,
      fps: 10,
    },
    cliProgress.Presets.legacy,
  );
  return {
    start(id, label, total) {
      const bar = multi.create(total ?? 1, 0, { label, status: "Working" });
      items.set(id, { label, total, current: 0, bar });
    },
    update(id, current) {
      const it = items.get(id);
      if (!it?.bar) return;
      it.current = current;
      it.bar.update(current, { label: it.label, status: "Working" });
    },
    finish(id, status, detail) {
      const it = items.get(id);
      if (!it?.bar) return;
      const word = status === "exists" ? "Exists" : status === "done" ? "Done" : status === "skipped" ? "Skipped" : "Failed";
      it.bar.update(it.total ?? it.current, { label: it.label, status: detail ? `${word} ${detail}` : word });
      it.bar.stop();
    },
    note(line) {
      multi.log(`${line}\n`);
    },
    summary(line) {
      multi.stop();
      write(`${line}\n`);
    },
    stop() {
      multi.stop();
    },
  };
}
