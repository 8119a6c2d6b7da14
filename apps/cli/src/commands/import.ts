import type { Command } from "commander";
import { type Context, openContextService } from "../context.js";

/** `berth import DIR|TAR`. */
export function register(program: Command, ctx: Context): void {
  program
    .command("import")
    .description("Make an image from a directory or a rootfs tar (plain, gzip or zstd), optionally as a new layer on a base image")
    .argument("<source>", "directory, tar file, or '-' for a tar on stdin")
    .argument("[reference]", "tag for the new image (same as --tag)")
    .option("--base <image>", "add the layer on top of this image (crane append style)")
    .option("-c, --change <instruction>", "apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR", (v: string, p: string[]) => [...p, v], [])
    .option("-t, --tag <reference>", "tag the new image (repeatable)", (v: string, p: string[]) => [...p, v], [])
    .option("-m, --message <text>", "commit message stored in the history")
    .option("--platform <os/arch[/variant]>", "platform of the image (default: this machine's; with --base: the base's)")
    .option("--preserve-owner", "keep file owners from the directory (default uid/gid 0)")
    .addHelpText(
      "after",
      `
A layer made from a directory is deterministic: entries sorted, mtimes fixed to
SOURCE_DATE_EPOCH (or 0), owners 0:0. The same directory gives the same DiffID;
with SOURCE_DATE_EPOCH set the image ID is reproducible too.

Examples:
  berth import ./rootfs base:1 --change 'CMD ["/bin/sh"]'
  berth import ./app --base base:1 --change 'WORKDIR /app' --change 'ENV MODE=prod' -t app:1
  tar -C rootfs -c . | berth import - base:2`,
    )
    .action(async (source: string, reference: string | undefined, opts: ImportOptions) => importAction(ctx, source, reference, opts));
}

interface ImportOptions {
  base?: string;
  change: string[];
  tag: string[];
  message?: string;
  platform?: string;
  preserveOwner?: boolean;
}

async function importAction(ctx: Context, source: string, reference: string | undefined, opts: ImportOptions): Promise<void> {
  const svc = await openContextService(ctx);
  const built = await svc.import(source === "-" ? { stream: process.stdin, name: "-" } : source, {
    ...(opts.base ? { base: opts.base } : {}),
    changes: opts.change,
    tags: [...(reference ? [reference] : []), ...opts.tag],
    ...(opts.message !== undefined ? { comment: opts.message } : {}),
    ...(opts.platform ? { platform: opts.platform } : {}),
    preserveOwner: opts.preserveOwner === true,
  });
  ctx.out(`${built.id}\n`);
  const layer = built.layers[0]!;
  ctx.info(`layer ${layer.diffID} (${layer.existed ? "exists" : "new"}), manifest ${built.image.manifestDigest}`);
}
