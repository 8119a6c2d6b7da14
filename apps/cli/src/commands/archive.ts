import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Readable } from "node:stream";
import type { Command } from "commander";
import { type Context, openContextStore, type Store } from "../context.js";
import { InterruptedError, UsageError } from "../exit.js";
import { humanSize } from "../format.js";
import { repoTag, short } from "../imageinfo.js";
import type { Progress } from "../progress.js";

type LoadResult = Awaited<ReturnType<typeof import("@berth/docker-archive").load>>;
type SavePlan = Awaited<ReturnType<typeof import("@berth/docker-archive").planSave>>;

/**
 * Run `fn` so that Ctrl-C (SIGINT) or SIGTERM aborts it cleanly: `abort` is
 * called with an {@link InterruptedError} (it should make `fn` fail, e.g. by
 * destroying its streams), `fn`'s own cleanup runs, and the error reaches
 * main, which exits 130. A second signal, or `fn` not settling within 10 s,
 * exits at once.
 */
async function interruptible<T>(fn: () => Promise<T>, abort: (err: InterruptedError) => void): Promise<T> {
  let interrupted: InterruptedError | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) process.exit(130);
    interrupted = new InterruptedError(sig);
    setTimeout(() => process.exit(130), 10_000).unref();
    abort(interrupted);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const r = await fn();
    // a signal that came while fn was finishing still means "keep nothing" (fn checks `stop` last)
    if (interrupted) throw interrupted;
    return r;
  } catch (err) {
    throw interrupted ?? err;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** A short label for an archive entry: the 12-hex ID of a blob or legacy layer directory. */
function entryLabel(name: string): string {
  const m = /(?:^|\/)([0-9a-f]{64})(?:\/layer\.tar|\.tar|\.json)?$/.exec(name);
  return m ? m[1]!.slice(0, 12) : name;
}

/** Print what a load did: per layer new/exists, `Loaded image:` lines, a summary. */
function reportLoad(ctx: Context, progress: Progress, result: LoadResult): void {
  let newLayers = 0;
  let reused = 0;
  let tags = 0;
  let newBytes = 0;
  const seen = new Set<string>();
  // stdout lines wait until the live display on stderr is finished
  const lines: string[] = [];
  for (const img of result.images) {
    for (const l of img.layers) {
      if (seen.has(l.chainID)) continue;
      seen.add(l.chainID);
      if (l.new) {
        newLayers++;
        newBytes += l.blob.size;
      } else reused++;
      progress.start(l.chainID, short(l.diffID), l.blob.size);
      progress.update(l.chainID, l.blob.size);
      progress.finish(l.chainID, l.new ? "done" : "exists");
    }
    tags += img.tags.length;
    if (img.tags.length === 0) lines.push(`Loaded image ID: ${img.id}`);
    for (const t of img.tags) lines.push(`Loaded image: ${repoTag(t).familiar}`);
  }
  for (const c of result.tagConflicts) {
    progress.note(
      c.action === "kept"
        ? `warning: tag ${repoTag(c.ref).familiar} names ${short(c.existing)} already; kept it there (use --overwrite-tags to move it to ${short(c.wanted)})`
        : `tag ${repoTag(c.ref).familiar} moved from ${short(c.existing)} to ${short(c.wanted)}`,
    );
  }
  for (const r of result.ignoredRefNames) progress.note(`warning: OCI ref name ${JSON.stringify(r)} is a bare tag; use --repository NAME to keep it`);
  progress.summary(
    `Loaded ${result.images.length} image(s), ${tags} tag(s): ${newLayers} new layer(s) (${humanSize(newBytes)}), ${reused} existing; ${humanSize(result.bytesRead)} read (${result.format}${result.compression === "gzip" ? ", gzip" : ""})`,
    { images: result.images.length, tags, newLayers, reusedLayers: reused, newBytes, bytes: result.bytesRead },
  );
  for (const l of lines) ctx.out(`${l}\n`);
}

/** The plan's entries with their byte ranges in the tar (512-byte header + padded body each). */
function entryRanges(plan: SavePlan): Array<{ name: string; start: number; end: number; size: number; streamed: boolean }> {
  const out: Array<{ name: string; start: number; end: number; size: number; streamed: boolean }> = [];
  let off = 0;
  for (const e of plan.entries) {
    const start = off;
    off += 512 + Math.ceil(e.size / 512) * 512;
    out.push({ name: e.name, start, end: off, size: e.size, streamed: e.open !== undefined });
  }
  return out;
}

/** Follow a save's bytes through the plan: one progress item per layer blob, plus the total. */
function saveTracker(progress: Progress, plan: SavePlan, label: string): { advance(n: number): void; done(): void } {
  const ranges = entryRanges(plan).filter((r) => r.streamed && r.size > 0);
  progress.start("archive", label, plan.size);
  let written = 0;
  let i = 0;
  let started = -1;
  return {
    advance(n) {
      written += n;
      progress.update("archive", written);
      while (i < ranges.length) {
        const r = ranges[i]!;
        if (written < r.start) break;
        if (started !== i) {
          progress.start(`entry:${i}`, entryLabel(r.name), r.size);
          started = i;
        }
        if (written >= r.end) {
          progress.update(`entry:${i}`, r.size);
          progress.finish(`entry:${i}`, "done");
          i++;
          continue;
        }
        progress.update(`entry:${i}`, Math.min(r.size, Math.max(0, written - r.start - 512)));
        break;
      }
    },
    done() {
      for (; i < ranges.length; i++) {
        if (started !== i) progress.start(`entry:${i}`, entryLabel(ranges[i]!.name), ranges[i]!.size);
        progress.update(`entry:${i}`, ranges[i]!.size);
        progress.finish(`entry:${i}`, "done");
      }
      progress.finish("archive", "done");
    },
  };
}

/**
 * `--with-parents`: the parent chains of the saved images (intermediate configs,
 * parent links, built-locally marks) as extra archive files (@berth/cache's
 * `collectParentChain`); `docker load` ignores them, `berth load -i` restores them.
 */
async function parentChainFiles(store: Store, refs: string[]): Promise<{ files: Array<{ name: string; bytes: Uint8Array }>; carried: number }> {
  const cache = await import("@berth/cache");
  const pc = await cache.collectParentChain(store, refs);
  return { files: pc.files, carried: pc.carried.length };
}

/** After `load -i FILE`: restore a parent chain carried by `save --with-parents` (uncompressed archives). */
async function restoreParents(store: Store, progress: Progress, file: string): Promise<void> {
  const cache = await import("@berth/cache");
  const files = await cache.readParentChain(file);
  if (files.length === 0) return;
  const r = await cache.restoreParentChain(store, files);
  progress.note(`Restored the build cache's parent chain: ${r.created.length} intermediate image(s), ${r.parents} parent link(s), ${r.builtLocally} built-locally mark(s)`);
  for (const s of r.skipped) progress.note(`warning: parent chain: ${short(s.id)} not restored: ${s.reason}`);
}

/** Register `load`, `save`, `docker push`, `docker pull` (and `image load/save`). */
export function register(program: Command, ctx: Context): void {
  const loadCmd = (cmd: Command) =>
    cmd
      .description("Load images from a docker save / OCI archive (tar, or gzip'd tar) on stdin or a file")
      .option("-i, --input <file>", "read from a file instead of stdin")
      .option("--overwrite-tags", "move tags that already name a different image (default: keep them and warn)")
      .option("--repository <name>", "repository for OCI ref names that are a bare tag")
      .addHelpText(
        "after",
        "\nNothing becomes visible unless the whole archive verified; Ctrl-C leaves the store as it was.\n\nExamples:\n  docker save busybox | berth load\n  berth load -i app.tar\n  skopeo copy docker://… oci-archive:/tmp/x.tar && berth load -i /tmp/x.tar",
      )
      .action(async (opts: { input?: string; overwriteTags?: boolean; repository?: string }) => {
        const { load } = await import("@berth/docker-archive");
        if (!opts.input && process.stdin.isTTY) throw new UsageError("requested load from stdin, but stdin is a terminal (use -i FILE or a pipe)");
        const total = opts.input ? (await stat(opts.input)).size : undefined;
        const store = await openContextStore(ctx);
        const source: Readable = opts.input ? createReadStream(opts.input) : process.stdin;
        const progress = ctx.progress();
        const label = opts.input ? basename(opts.input) : "stdin";
        progress.start("archive", label, total);
        // count the bytes as load consumes them (live progress even inside one big layer)
        let read = 0;
        let entry = "";
        const counted = (async function* () {
          for await (const chunk of source) {
            read += (chunk as Uint8Array).length;
            progress.update("archive", read, entry ? `${label} ${entry}` : label);
            yield chunk as Uint8Array;
          }
        })();
        const result = await interruptible(
          () =>
            load(store, counted, {
              tagConflict: opts.overwriteTags ? "move" : "keep",
              ...(opts.repository ? { repository: opts.repository } : {}),
              onProgress: (p) => {
                entry = p.entry ? entryLabel(p.entry) : "";
              },
            }),
          (err) => source.destroy(err),
        ).catch((err: unknown) => {
          progress.finish("archive", "failed");
          progress.stop();
          throw err;
        });
        progress.update("archive", result.bytesRead, label);
        progress.finish("archive", "done");
        if (opts.input && result.compression === "none") await restoreParents(store, progress, opts.input);
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
      .addHelpText(
        "after",
        "\nThe archive is deterministic: the same images give the same bytes (mtimes 0 or SOURCE_DATE_EPOCH).\nWith -o the archive appears only when complete; Ctrl-C or an error leaves no file.\n\nExamples:\n  berth save -o app.tar app:1\n  berth save app:1 | docker load\n  berth save --format oci -o app-oci.tar app:1",
      )
      .action(async (images: string[], opts: { output?: string; format: string; uncompressed?: boolean; withParents?: boolean }) => {
        const formats: Record<string, "docker" | "oci" | "docker+oci"> = { docker: "docker", oci: "oci", both: "docker+oci", "docker+oci": "docker+oci" };
        const format = formats[opts.format];
        if (!format) throw new UsageError(`invalid --format ${JSON.stringify(opts.format)} (want docker, oci or both)`);
        if (!opts.output && process.stdout.isTTY) throw new UsageError("cowardly refusing to write a tar archive to a terminal (use -o FILE or redirect)");
        const store = await openContextStore(ctx);
        const archive = await import("@berth/docker-archive");
        const chain = opts.withParents ? await parentChainFiles(store, images) : undefined;
        const options = { format, ...(opts.uncompressed ? { uncompressed: true } : {}), ...(chain ? { extraFiles: chain.files } : {}) };
        const plan = await archive.planSave(store, images, options);
        const progress = ctx.progress();
        const tracker = saveTracker(progress, plan, opts.output ? basename(opts.output) : "stdout");
        const chunks = archive.planChunks(plan);
        let stop: InterruptedError | undefined;
        if (opts.output) {
          const output = opts.output;
          // write next to the target, rename into place when complete (no partial archive is ever visible)
          const tmp = join(dirname(output), `.${basename(output)}.berth-${process.pid}.tmp`);
          let out: ReturnType<typeof createWriteStream> | undefined;
          await interruptible(
            async () => {
              // opened inside the interruptible part, so Ctrl-C at any moment removes the temp file
              out = createWriteStream(tmp, { mode: 0o600 });
              // write errors reach us through the writes below; none may surface as an uncaught 'error' event
              out.on("error", () => {});
              try {
                await once(out, "open");
                for await (const chunk of chunks) {
                  if (stop) throw stop;
                  if (!out.write(chunk)) await once(out, "drain");
                  tracker.advance(chunk.length);
                }
                await new Promise<void>((resolve, reject) => out!.end((err?: Error | null) => (err ? reject(err) : resolve())));
                if (stop) throw stop;
                await rename(tmp, output);
                if (stop) {
                  await rm(output, { force: true });
                  throw stop;
                }
              } catch (err) {
                out.destroy();
                await rm(tmp, { force: true });
                progress.stop();
                throw err;
              }
            },
            (err) => {
              stop = err;
              out?.destroy(err);
            },
          );
        } else {
          await interruptible(
            async () => {
              for await (const chunk of chunks) {
                if (stop) throw stop;
                if (!process.stdout.write(chunk)) await once(process.stdout, "drain");
                tracker.advance(chunk.length);
              }
            },
            (err) => {
              stop = err;
              process.stdout.emit("drain");
            },
          ).catch((err: unknown) => {
            progress.stop();
            throw err;
          });
        }
        tracker.done();
        const tags = plan.images.reduce((n, i) => n + i.tags.length, 0);
        progress.summary(
          `Saved ${plan.images.length} image(s), ${tags} tag(s), ${plan.layers} layer(s)${chain ? `, parent chain (${chain.carried} intermediate config(s))` : ""}: ${humanSize(plan.size)} (${opts.format}${opts.uncompressed ? ", uncompressed layers" : ""})`,
          { images: plan.images.length, tags, layers: plan.layers, bytes: plan.size },
        );
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
      const { loadIntoDaemon, DockerClient } = await import("@berth/docker-archive");
      const { chainIds } = await import("@berth/digest");
      const store = await openContextStore(ctx);
      const client = new DockerClient();
      const progress = ctx.progress();
      // which layers the daemon has: shown as "Exists", the rest as sent
      const have = opts.full ? new Set<string>() : await client.layerChains();
      const layers = new Map<string, { diffID: string; size: number }>();
      for (const name of images) {
        const img = await store.images.get(await store.references.resolve(name));
        const diffs = img.config.rootfs.diff_ids;
        const chains = chainIds(diffs);
        for (let i = 0; i < chains.length; i++) {
          if (layers.has(chains[i]!)) continue;
          const l = await store.layers.get(chains[i]!);
          layers.set(chains[i]!, { diffID: diffs[i]!, size: l.blob.size });
        }
      }
      for (const [c, l] of layers) if (have.has(c)) {
        progress.start(c, short(l.diffID), l.size);
        progress.finish(c, "exists");
      }
      progress.start("push", `push ${images.join(" ")}`);
      const r = await loadIntoDaemon(store, images, { incremental: !opts.full, client });
      progress.update("push", r.bytesSent);
      progress.finish("push", "done");
      for (const [c, l] of layers) if (!have.has(c) || r.fellBack) {
        progress.start(c, short(l.diffID), l.size);
        progress.update(c, l.size);
        progress.finish(c, "done");
      }
      for (const m of r.messages) ctx.out(`${m}\n`);
      progress.summary(
        `Sent ${humanSize(r.bytesSent)}: ${r.layersSent} layer(s) sent, ${r.layersSkipped} skipped (the daemon had them)${r.fellBack ? "; the incremental archive was refused, sent the full one" : ""}`,
        { bytesSent: r.bytesSent, archiveSize: r.archiveSize, layersSent: r.layersSent, layersSkipped: r.layersSkipped, fellBack: r.fellBack },
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
        onProgress: (p) => progress.update("archive", p.bytesRead, `daemon ${entryLabel(p.entry)}`),
      }).catch((err: unknown) => {
        progress.finish("archive", "failed");
        progress.stop();
        throw err;
      });
      progress.update("archive", result.bytesRead, "daemon");
      progress.finish("archive", "done");
      reportLoad(ctx, progress, result);
    });
}
