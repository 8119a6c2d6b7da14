import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { hostPlatform, parsePlatform as parseOciPlatform } from "@berth/oci";
import type { Command } from "commander";
import { applyChanges, type RunConfig } from "../changes.js";
import { type Context, openContextStore } from "../context.js";
import { directoryLayer, sourceDateEpoch } from "../dirlayer.js";
import { UsageError } from "../exit.js";
import type { Store } from "../context.js";

/** `os/arch[/variant]` from `--platform` (a usage error when malformed), defaulting to this machine's platform. */
export function parsePlatform(p: string | undefined): { os: string; architecture: string; variant?: string } {
  if (!p) return hostPlatform();
  try {
    return parseOciPlatform(p);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

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
  const store = await openContextStore(ctx);
  const tags = [...(reference ? [reference] : []), ...opts.tag];
  // validate the tags before doing any work
  const { parseReference } = await import("@berth/image-store");
  for (const t of tags) parseReference(t);

  const epoch = sourceDateEpoch();
  const created = new Date(epoch !== undefined ? epoch * 1000 : Date.now()).toISOString().replace(/\.000Z$/, "Z");
  const base = opts.base ? await store.images.get(await store.references.resolve(opts.base)) : undefined;

  let layerSource: AsyncIterable<Uint8Array> | NodeJS.ReadableStream;
  let what: string;
  let fromDirectory = false;
  if (source === "-") {
    layerSource = process.stdin;
    what = "-";
  } else {
    const st = await stat(source);
    what = basename(source);
    fromDirectory = st.isDirectory();
    layerSource = fromDirectory ? directoryLayer(source, { preserveOwner: opts.preserveOwner === true }) : createReadStream(source);
  }
  const lease = await store.lease();
  let rejected = false;
  try {
    const layer = await store.layers.register(layerSource as AsyncIterable<Uint8Array>, base?.chainID ?? null, { lease });
    // A tar from outside is checked before it becomes an image: a real tar, no entry escaping the root.
    if (!fromDirectory) {
      try {
        await checkLayerTar(store, layer.chainID, what);
      } catch (err) {
        rejected = true;
        throw err;
      }
    }
    const message = opts.message ?? `Imported from ${what}`;
    const platform = base && !opts.platform ? { os: base.config.os, architecture: base.config.architecture, ...(base.config.variant ? { variant: base.config.variant } : {}) } : parsePlatform(opts.platform);
    const runConfig = applyChanges((base?.config.config as RunConfig | null | undefined) ?? {}, opts.change);
    const config = {
      architecture: platform.architecture,
      ...(platform.variant ? { variant: platform.variant } : {}),
      os: platform.os,
      created,
      ...(base?.config.author ? { author: base.config.author } : {}),
      config: runConfig,
      rootfs: { type: "layers", diff_ids: [...(base?.config.rootfs.diff_ids ?? []), layer.diffID] },
      history: [
        ...(base?.config.history ?? []),
        { created, created_by: base ? `berth import ${what}` : "", comment: message },
      ].map((h) => Object.fromEntries(Object.entries(h).filter(([, v]) => v !== ""))),
    };
    const img = await store.images.create(new TextEncoder().encode(JSON.stringify(config)), { lease });
    if (base) await store.images.setParent(img.id, base.id);
    for (const t of tags) await store.references.tag(t, img.id, { force: true });
    ctx.out(`${img.id}\n`);
    ctx.info(`layer ${layer.diffID} (${layer.existed ? "exists" : "new"}), manifest ${img.manifestDigest}`);
  } finally {
    await lease.release();
    // the rejected layer is garbage now: remove it at once
    if (rejected) await store.gc().catch(() => {});
  }
}

/**
 * Read a just-registered layer back as a tar: refuse input that is not a tar
 * (ERR_NOT_A_TAR) and entries that would land outside the root (ERR_UNSAFE_PATH),
 * as docker import does when it applies the layer.
 */
async function checkLayerTar(store: Store, chainID: string, what: string): Promise<void> {
  const { readTar } = await import("@berth/docker-archive");
  const { InvalidArgumentError } = await import("@berth/digest");
  const stream = await store.layers.openUncompressed(chainID);
  let entries = 0;
  try {
    for await (const e of readTar(stream)) {
      entries++;
      const parts = e.rawName.split("/");
      if (e.rawName.startsWith("/") || parts.includes("..")) {
        throw new InvalidArgumentError(`${what}: unsafe entry ${JSON.stringify(e.rawName)} (outside the image root)`, { code: "ERR_UNSAFE_PATH" });
      }
      if (e.type === "hardlink" && e.linkname !== undefined && (e.linkname.startsWith("/") || e.linkname.split("/").includes(".."))) {
        throw new InvalidArgumentError(`${what}: hard link ${JSON.stringify(e.rawName)} points outside the image root`, { code: "ERR_UNSAFE_PATH" });
      }
    }
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_UNSAFE_PATH") throw err;
    throw new InvalidArgumentError(`${what}: not a tar archive (${err instanceof Error ? err.message : String(err)})`, { code: "ERR_NOT_A_TAR", cause: err });
  } finally {
    stream.destroy();
  }
  if (entries === 0) throw new InvalidArgumentError(`${what}: not a tar archive (no entries)`, { code: "ERR_NOT_A_TAR" });
}
