import type { Command } from "commander";
import { humanSize } from "../format.js";
import { type Context, openContextService } from "../context.js";
import { type IdMapFlags, idMapOptions, parseIdMapFlags } from "../idmap.js";
import { interruptible } from "../interrupt.js";

interface UnpackFlags extends IdMapFlags {
  owners: boolean;
}

/** `berth unpack IMAGE DIR`. */
export function register(program: Command, ctx: Context): void {
  const cmd = program
    .command("unpack")
    .description("Write an image's root filesystem into a directory (what umoci unpack's rootfs or docker export of a new container holds)")
    .argument("<image>", "name, ID or unique ID prefix")
    .argument("<dir>", "target directory: absent or empty")
    .option("--no-owners", "do not apply the layers' owners (default: applied when running as root)");
  idMapOptions(cmd, "to give their files (a tree for a user-namespaced container)")
    .addHelpText(
      "after",
      `
Layers are applied bottom-up with Docker's semantics: whiteouts remove what
lower layers put there, opaque directories hide it, hard links, symlinks,
modes and mtimes are kept; owners (mapped with --uidmap/--gidmap), device
nodes and fifos only as root. Without root, owners other than 0:0 are
recorded in the user.rootlesscontainers attribute (as umoci --rootless does),
which berth commit reads back, and device nodes are skipped and reported.
Extended attributes are set with setfattr (Debian's attr). A layer
that names a path outside the directory, or writes through a symlink, fails
the unpack. The tree is built beside DIR and renamed into place when
complete: on failure or Ctrl-C nothing is left at DIR.

Examples:
  berth unpack busybox:latest ./rootfs
  sudo berth unpack app:1 /srv/app/rootfs
  sudo berth unpack app:1 ./rootfs --uidmap 0:100000:65536`,
    )
    .action(async (image: string, dir: string, opts: UnpackFlags) => unpackAction(ctx, image, dir, opts));
}

async function unpackAction(ctx: Context, image: string, dir: string, opts: UnpackFlags): Promise<void> {
  const idMapping = parseIdMapFlags(opts);
  const svc = await openContextService(ctx);
  const progress = ctx.progress();
  const stop = new AbortController();
  const result = await interruptible(
    () =>
      svc.unpack(image, dir, {
        ...(opts.owners === false ? { owners: false } : {}),
        ...(idMapping ? { idMapping } : {}),
        signal: stop.signal,
        onLayerStart: (i, n, layer) => progress.start(layer.chainID, `layer ${i + 1}/${n} ${layer.diffID.slice(7, 19)}`, layer.blob.size),
        onLayer: (_i, _n, layer, r) => {
          progress.update(layer.chainID, layer.blob.size);
          progress.finish(layer.chainID, "done", `${r.entries} entries${r.whiteouts ? `, ${r.whiteouts} whiteouts` : ""}`);
          for (const s of r.skipped) progress.note(`warning: ${s.path}: ${s.type} not created (${s.reason})`);
          if (r.skippedCount > r.skipped.length) progress.note(`warning: ${r.skippedCount - r.skipped.length} more entries not created`);
        },
      }),
    (err) => stop.abort(err),
  ).catch((err: unknown) => {
    progress.stop();
    throw err;
  });
  const notes: string[] = [];
  if (result.xattrsSkipped) notes.push(`${result.xattrsSkipped} extended attribute(s) not set${result.xattrNotes[0] ? ` (${result.xattrNotes[0]})` : ""}`);
  if (result.ownersNotApplied) {
    const n = result.ownersNotApplied;
    const recorded = result.ownersRecorded ? `; ${result.ownersRecorded} recorded in user.rootlesscontainers, which berth commit reads` : "";
    notes.push(`owners of ${n} entr${n === 1 ? "y" : "ies"} not applied (not root)${recorded}`);
  }
  for (const n of notes) progress.note(`warning: ${n}`);
  progress.summary(`Unpacked ${result.id.slice(7, 19)} into ${result.dir}: ${result.layers.length} layer(s), ${result.entries} entries, ${humanSize(result.bytes)}`, {
    id: result.id,
    dir: result.dir,
    layers: result.layers.length,
    entries: result.entries,
    bytes: result.bytes,
    skipped: result.skipped,
    xattrs: result.xattrs,
    xattrsSkipped: result.xattrsSkipped,
  });
  progress.stop();
}
