import type { Command } from "commander";
import { createProgress, type Progress, progressMode } from "./progress.js";
import { resolveRoot } from "./root.js";

/** Global options every verb sees. */
export interface GlobalOptions {
  root?: string;
  quiet?: boolean;
  debug?: boolean;
  progress?: string;
}

/** What a verb needs from the program: options, output streams, progress. */
export class Context {
  /** The verb being run, e.g. `image inspect` (for error lines). */
  verb: string | undefined;

  constructor(private readonly program: Command) {}

  /** The verb's command object (set before its action runs). */
  action: Command | undefined;

  /**
   * The global options (`--root`, `--quiet`, `--debug`, `--progress`), given
   * before the verb or after it (a verb's own `-q` counts as `--quiet` only
   * where the verb has no other meaning for it; see main.ts).
   */
  get globals(): GlobalOptions {
    const g = { ...this.program.opts<GlobalOptions>() };
    const local = this.action?.opts<GlobalOptions & { quiet?: unknown }>() ?? {};
    if (local.root !== undefined) g.root = local.root;
    if (local.debug !== undefined) g.debug = local.debug;
    if (local.progress !== undefined) g.progress = local.progress;
    if (local.quiet === true && this.action?.options.some((o) => o.long === "--quiet" && o.hidden)) g.quiet = true;
    return g;
  }

  /** The store root in effect. */
  get root(): string {
    return resolveRoot(this.globals.root);
  }

  /** Progress reporter for long work, on stderr. */
  progress(): Progress {
    return createProgress(progressMode(this.globals.progress, this.globals.quiet === true));
  }

  /** Write to stdout. */
  out(text: string): void {
    process.stdout.write(text);
  }

  /** Write a line to stderr (suppressed by --quiet). */
  info(line: string): void {
    if (!this.globals.quiet) process.stderr.write(`${line}\n`);
  }
}

/** The store type the verbs use (what `openStore` returns). */
export type Store = import("@berth/image-store").Store;

let opened: import("@berth/image-service").ImageService | undefined;

/** The image service over the store at the root in effect (opened once per process). */
export async function openContextService(ctx: Context): Promise<import("@berth/image-service").ImageService> {
  if (opened) return opened;
  const { openImageService } = await import("@berth/image-service");
  opened = await openImageService({ root: ctx.root });
  return opened;
}

/** The store at the root in effect (the one the image service holds). */
export async function openContextStore(ctx: Context): Promise<Store> {
  return (await openContextService(ctx)).store;
}

/** Close the store if a verb opened it. */
export async function closeContextStore(): Promise<void> {
  const s = opened;
  opened = undefined;
  await s?.close();
}
