import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Command } from "commander";
import { type Context, openContextStore } from "../context.js";
import { UsageError } from "../exit.js";
import { humanSize } from "../format.js";
import { repoTag, short } from "../imageinfo.js";
import type { Progress } from "../progress.js";

type LoadResult = Awaited<ReturnType<typeof import("@berth/docker-archive").load>>;

/** Run `fn`, turning Ctrl-C / SIGTERM into a clean abort: `cleanup` runs, exit 130. */
async function interruptible<T>(fn: () => Promise<T>, cleanup: () => Promise<void>): Promise<T> {
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    void cleanup().finally(() => {
      process.stderr.write(`berth: interrupted (${sig}); nothing was kept\n`);
      process.exit(130);
    });
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await fn();
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** Print what a load did: per layer new/exists, `Loaded image:` lines, a summary. */
function reportLoad(ctx: Context, progress: Progress, result: LoadResult): void {
  let newLayers = 0;
  let reused = 0;
  let tags = 0;
  const seen = new Set<string>();
  for (const img of result.images) {
    for (const l of img.layers) {
      if (seen.has(l.chainID)) continue;
      seen.add(l.chainID);
      if (l.new) newLayers++;
      else reused++;
      progress.start(l.chainID, short(l.diffID), l.blob.size);
      progress.update(l.chainID, l.blob.size);
      progress.finish(l.chainID, l.new ? "done" : "exists");
    }
    tags += img.tags.length;
    if (img.tags.length === 0) ctx.out(`Loaded image ID: ${img.id}\n`);
    for (const t of img.tags) ctx.out(`Loaded image: ${repoTag(t).familiar}\n`);
  }
  for (const c of result.tagConflicts) progress.note(`warning: ${JSON.stringify(c)}`);
  progress.summary(
    `loaded ${result.images.length} image(s), ${tags} tag(s), ${newLayers} new and ${reused} existing layer(s), ${humanSize(result.bytesRead)} read (${result.format}${result.compression === "gzip" ? ", gzip" : ""})`,
    { images: result.images.length, tags, newLayers, reusedLayers: reused, bytes: result.bytesRead },
  );
}

/** Register `load`, `save`, `docker push`, `docker pull` (and `image load/save`). */
export function register(program: Command, ctx: Context): void {
  const loadCmd = (cmd: Command) =>
    cmd
      .description("Load images from a docker save / OCI archive (tar, or gzip'd tar) on stdin or a file")
      .option("-i, --input <file>", "read from a file instead of stdin")
      .option("--overwrite-tags", "move tags that already name a different image (default: keep them and warn)")
      .option("--repository <name>", "repository for OCI ref names that are a bare tag")
      .addHelpText("after", "\nExamples:\n  docker save busybox | berth load\n  berth load -i app.tar\n  skopeo copy docker://… oci-archive:/tmp/x.tar && berth load -i /tmp/x.tar")
      .action(async (opts: { input?: string; overwriteTags?: boolean; repository?: string }) => {
        const { load } = await import("@berth/docker-archive");
        if (!opts.input && process.stdin.isTTY) throw new UsageError("requested load from stdin, but stdin is a terminal (use -i FILE or a pipe)");
        const store = await openContextStore(ctx);
        const total = opts.input ? (await stat(opts.input)).size : undefined;
        const source = opts.input ? createReadStream(opts.input) : process.stdin;
        const progress = ctx.progress();
        progress.start("archive", opts.input ? basename(opts.input) : "stdin", total);
        const result = await interruptible(
          () =>
            load(store, source, {
              tagConflict: opts.overwriteTags ? "move" : "keep",
              ...(opts.repository ? { repository: opts.repository } : {}),
              onProgress: (p) => progress.update("archive", p.bytesRead),
            }),
          async () => {
            progress.stop();
            source.destroy();
          },
        ).catch((err: unknown) => {
          progress.finish("archive", "failed");
          progress.stop();
          throw err;
        });
        progress.finish("archive", "done");
        reportLoad(ctx, progress, result);
      });
  loadCmd(program.command("load"));

  const saveCmd = (cmd: Command) =>
    cmd
      .description("Save images to a tar archive that docker load (old and new), podman and containerd accept")
      .argument("<image...>", "names, IDs or ID prefixes")
      .option("-o, --output <file>", "write to a file (default stdout, never a terminal)")
      .option("--format <format>", "docker (legacy manifest.json), oci (OCI layout), or both (Docker 25+ layout, default)", "both")
      .option("--uncompressed", "write layers as plain tars")
      .option("--with-parents", "also carry the parent chain's intermediate images so build cache survives save/load (docker load ignores the extra files)")
      .addHelpText("after", "\nThe archive is deterministic: the same images give the same bytes (mtimes 0 or SOURCE_DATE_EPOCH).\n\nExamples:\n  berth save -o app.tar app:1\n  berth save app:1 | docker load\n  berth save --format oci -o app-oci.tar app:1")
      .action(async (images: string[], opts: { output?: string; format: string; uncompressed?: boolean; withParents?: boolean }) => {
        const formats: Record<string, "docker" | "oci" | "docker+oci"> = { docker: "docker", oci: "oci", both: "docker+oci", "docker+oci": "docker+oci" };
        const format = formats[opts.format];
        if (!format) throw new UsageError(`invalid --format ${JSON.stringify(opts.format)} (want docker, oci or both)`);
        if (!opts.output && process.stdout.isTTY) throw new UsageError("cowardly refusing to write a tar archive to a terminal (use -o FILE or redirect)");
        const store = await openContextStore(ctx);
        const archive = await import("@berth/docker-archive");
        let refs = images;
        if (opts.withParents) {
          const cache = (await import("@berth/cache")) as Record<string, unknown>;
          if (typeof cache.withParentChain !== "function") {
            throw new UsageError("--with-parents needs @berth/cache's parent-chain export, which this build does not have");
          }
          refs = await (cache.withParentChain as (s: unknown, r: string[]) => Promise<string[]>)(store, images);
        }
        const options = { format, ...(opts.uncompressed ? { uncompressed: true } : {}) };
        const plan = await archive.planSave(store, refs, options);
        const progress = ctx.progress();
        progress.start("archive", opts.output ? basename(opts.output) : "stdout", plan.size);
        let written = 0;
        const chunks = archive.planChunks(plan);
        if (opts.output) {
          const tmp = join(dirname(opts.output), `.${basename(opts.output)}.berth-${process.pid}.tmp`);
          const out = createWriteStream(tmp, { mode: 0o600 });
          const cleanup = async () => {
            out.destroy();
            await rm(tmp, { force: true });
          };
          await interruptible(async () => {
            try {
              for await (const chunk of chunks) {
                if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
                written += chunk.length;
                progress.update("archive", written);
              }
              await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
              await rename(tmp, opts.output!);
            } catch (err) {
              await cleanup();
              throw err;
            }
          }, cleanup);
        } else {
          await interruptible(async () => {
            for await (const chunk of chunks) {
              if (!process.stdout.write(chunk)) await new Promise<void>((r) => process.stdout.once("drain", () => r()));
              written += chunk.length;
              progress.update("archive", written);
            }
          }, async () => {});
        }
        progress.finish("archive", "done");
        progress.summary(`saved ${plan.images.length} image(s), ${humanSize(written)} (${format}${opts.uncompressed ? ", uncompressed layers" : ""})`, {
          images: plan.images.length,
          bytes: written,
        });
      });
  saveCmd(program.command("save"));

  const image = program.commands.find((c) => c.name() === "image");
  if (image) {
    loadCmd(image.command("load"));
    saveCmd(image.command("save"));
  }

  const docker = program.command("docker").description("Move images between the store and a Docker daemon (DOCKER_HOST)");
  docker
    .command("push")
    .description("Load images into the Docker daemon, sending only the layers it lacks")
    .argument("<image...>")
    .option("--full", "send every layer (no incremental load)")
    .addHelpText("after", "\nExamples:\n  DOCKER_HOST=unix:///var/run/docker.sock berth docker push app:1")
    .action(async (images: string[], opts: { full?: boolean }) => {
      const { loadIntoDaemon } = await import("@berth/docker-archive");
      const store = await openContextStore(ctx);
      const progress = ctx.progress();
      progress.start("push", images.join(" "));
      const r = await loadIntoDaemon(store, images, { incremental: !opts.full });
      progress.update("push", r.bytesSent);
      progress.finish("push", "done");
      for (const m of r.messages) ctx.out(`${m}\n`);
      progress.summary(
        `sent ${humanSize(r.bytesSent)}: ${r.layersSent} layer(s) sent, ${r.layersSkipped} skipped (daemon had them)${r.fellBack ? "; the incremental archive was refused, sent the full one" : ""}`,
        { bytesSent: r.bytesSent, layersSent: r.layersSent, layersSkipped: r.layersSkipped, fellBack: r.fellBack },
      );
    });
  docker
    .command("pull")
    .description("Copy images from the Docker daemon into the store")
    .argument("<image...>")
    .option("--overwrite-tags", "move tags that already name a different image")
    .action(async (images: string[], opts: { overwriteTags?: boolean }) => {
      const { pullFromDaemon } = await import("@berth/docker-archive");
      const store = await openContextStore(ctx);
      const progress = ctx.progress();
      progress.start("archive", "daemon");
      const result = await pullFromDaemon(store, images, {
        tagConflict: opts.overwriteTags ? "move" : "keep",
        onProgress: (p) => progress.update("archive", p.bytesRead),
      });
      progress.finish("archive", "done");
      reportLoad(ctx, progress, result);
    });
}
