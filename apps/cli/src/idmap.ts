/**
 * `--uidmap` / `--gidmap` (container:host:size ranges, repeatable), shared by
 * `berth unpack` and `berth commit`: parsed into `@berth/cache`'s
 * `IdentityMapping`; a bad range is a usage error.
 * @module
 */
import { IdentityMapping } from "@berth/cache";
import type { Command } from "commander";
import { UsageError } from "./exit.js";

/** What the two options collect. */
export interface IdMapFlags {
  uidmap: string[];
  gidmap: string[];
}

const repeat = (v: string, p: string[]) => [...p, v];

/** Add `--uidmap` and `--gidmap` to `cmd`, saying what `hostIs` means for the command. */
export function idMapOptions(cmd: Command, hostIs: string): Command {
  return cmd
    .option("--uidmap <container:host:size>", `container uids and the host uids ${hostIs} (repeatable)`, repeat, [])
    .option("--gidmap <container:host:size>", "the same for groups (default: as --uidmap)", repeat, []);
}

/** The mapping the flags give, or undefined when none was given. @throws UsageError */
export function parseIdMapFlags(opts: IdMapFlags): IdentityMapping | undefined {
  if (opts.uidmap.length === 0 && opts.gidmap.length === 0) return undefined;
  try {
    return IdentityMapping.parse(opts.uidmap, opts.gidmap.length > 0 ? opts.gidmap : opts.uidmap);
  } catch (err) {
    throw new UsageError(`--uidmap/--gidmap: ${err instanceof Error ? err.message : String(err)}`);
  }
}
