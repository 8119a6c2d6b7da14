/**
 * `berth commit DIR --base IMAGE -t NEW`: an edited root filesystem as one
 * new layer on its base image (`commitDirectory` of `@berth/image-service`);
 * this file parses and formats.
 * @module
 */
import type { Command } from "commander";
import { type Context, openContextService } from "../context.js";
import { type IdMapFlags, idMapOptions, parseIdMapFlags } from "../idmap.js";

interface CommitOptions extends IdMapFlags {
  base?: string;
  change: string[];
  tag: string[];
  message?: string;
  compareContent?: boolean;
  keepMtimes?: boolean;
}

const repeat = (v: string, p: string[]) => [...p, v];

/** `berth commit DIR`. */
export function register(program: Command, ctx: Context): void {
  const cmd = program
    .command("commit")
    .description("Make an image from an edited root filesystem: its difference from the base image as one new layer")
    .argument("<dir>", "the edited root filesystem (e.g. an unpacked image)")
    .argument("[reference]", "tag for the new image (same as --tag)")
    .option("--base <image>", "the image the directory was made from (default: none, every path is new)")
    .option("-c, --change <instruction>", "apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR", repeat, [])
    .option("-t, --tag <reference>", "tag the new image (repeatable)", repeat, [])
    .option("-m, --message <text>", "commit message stored in the history")
    .option("--compare-content", "also compare the bytes of files whose size and mtime are unchanged (where the base can give them)")
    .option("--keep-mtimes", "keep the files' mtimes in the layer (default: SOURCE_DATE_EPOCH, else 0)");
  idMapOptions(cmd, "that own their files in the directory")
    .addHelpText(
      "after",
      `
Changed paths are found as Docker does (type, mode, owner, size, mtime, link
target); removed paths become whiteouts, a directory whose old contents are all
gone becomes opaque. The layer is deterministic; an unchanged directory gives an
empty layer, as docker commit does.

Examples:
  berth commit ./rootfs --base base:1 -t base:2 --change 'CMD ["/bin/sh"]'
  berth commit ./rootfs --base base:1 -t app:1 --uidmap 0:100000:65536`,
    )
    .action(async (dir: string, reference: string | undefined, opts: CommitOptions) => commitAction(ctx, dir, reference, opts));
}

async function commitAction(ctx: Context, dir: string, reference: string | undefined, opts: CommitOptions): Promise<void> {
  const idMapping = parseIdMapFlags(opts);
  const svc = await openContextService(ctx);
  const built = await svc.commit({
    dir,
    ...(opts.base ? { base: opts.base } : {}),
    changes: opts.change,
    tags: [...(reference ? [reference] : []), ...opts.tag],
    ...(opts.message !== undefined ? { message: opts.message } : {}),
    ...(opts.compareContent ? { compareContent: true } : {}),
    ...(opts.keepMtimes ? { keepMtimes: true } : {}),
    ...(idMapping ? { idMapping } : {}),
  });
  ctx.out(`${built.id}\n`);
  const layer = built.layers[0]!;
  const { added, changed, removed } = built.counts;
  ctx.info(`layer ${layer.diffID} (${layer.existed ? "exists" : "new"}): ${added} added, ${changed} changed, ${removed} removed; manifest ${built.image.manifestDigest}`);
}
