import { rm, stat } from "node:fs/promises";
import { basename } from "node:path";
import { shortId as short } from "@berth/digest";
import type { RestoreResult } from "@berth/cache";
import type { Command } from "commander";
import { type Context, openContextService } from "../context.js";
import { InterruptedError, UsageError } from "../exit.js";
import { interruptible } from "../interrupt.js";
import { humanSize } from "../format.js";
import type { Progress } from "../progress.js";

type LoadResult = Awaited<ReturnType<typeof import("@berth/docker-archive").load>>;
type SavePlan = Awaited<ReturnType<typeof import("@berth/docker-archive").planSave>>;
type PlanEntryRange = import("@berth/docker-archive").PlanEntryRange;

/** A short label for an archive entry: the 12-hex ID of a blob or legacy layer directory. */
function entryLabel(name: string): string {
  const m = /(?:^|\/)([0-9a-f]{64})(?:\/layer\.tar|\.tar|\.json)?$/.exec(name);
  return m ? m[1]!.slice(0, 12) : name;
}

/** Print what a load did: per layer new/exists, `Loaded image:` lines, a summary. */
async function reportLoad(ctx: Context, progress: Progress, result: LoadResult & { parentChain?: RestoreResult }): Promise<void> {
  const { repoTag } = await import("@berth/image-service");
  const r = result.parentChain;
  if (r) {
    progress.note(`Restored the build cache's parent chain: ${r.created.length} intermediate image(s), ${r.parents} parent link(s), ${r.builtLocally} built-locally mark(s)`);
    for (const s of r.skipped) progress.note(`warning: parent chain: ${short(s.id)} not restored: ${s.reason}`);
  }
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

/** Follow a save's bytes through the plan: one progress item per layer blob, plus the total. */
function saveTracker(progress: Progress, plan: SavePlan, ranges: readonly PlanEntryRange[], label: string): { advance(n: number): void; done(): void } {
  ranges = ranges.filter((r) => r.streamed && r.size > 0);
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
        progress.update(`entry:${i}`, Math.min(r.size, Math.max(0, written - r.dataStart)));
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
        if (!opts.input && process.stdin.isTTY) throw new UsageError("requested load from stdin, but stdin is a terminal (use -i FILE or a pipe)");
        const { repoTag, warmLoadWorkers } = await import("@berth/image-service");
        const total = opts.input ? (await stat(opts.input)).size : undefined;
        // a file is loaded by worker threads: they start while the store opens
        if (total !== undefined) warmLoadWorkers(total);
        const svc = await openContextService(ctx);
        const progress = ctx.progress();
        const label = opts.input ? basename(opts.input) : "stdin";
        progress.start("archive", label, total);
        const stop = new AbortController();
        let entry = "";
        // a file goes to the library as a path (worker threads); stdin is counted as load consumes it
        let read = 0;
        const counted = opts.input
          ? opts.input
          : (async function* () {
              for await (const chunk of process.stdin) {
                read += (chunk as Uint8Array).length;
                progress.update("archive", read, entry ? `${label} ${entry}` : label);
                yield chunk as Uint8Array;
              }
            })();
        const result = await interruptible(
          () =>
            svc.load(counted, {
              tagConflict: opts.overwriteTags ? "move" : "keep",
              ...(opts.repository ? { repository: opts.repository } : {}),
              signal: stop.signal,
              onProgress: (p) => {
                entry = p.entry ? entryLabel(p.entry) : "";
                if (opts.input) progress.update("archive", p.bytesRead, entry ? `${label} ${entry}` : label);
              },
            }),
          (err) => {
            stop.abort(err);
            if (!opts.input) process.stdin.destroy(err);
          },
          // the load had committed when the signal was acted on: say what stays
          (r) => {
            const tags = r.images.flatMap((im) => im.tags.map((t) => repoTag(t).familiar));
            const ids = r.images.filter((im) => im.tags.length === 0).map((im) => short(im.id));
            return `the load had already committed: kept ${r.images.length} image(s)${[...tags, ...ids].length ? ` (${[...tags, ...ids].join(", ")})` : ""}`;
          },
        ).catch((err: unknown) => {
          progress.finish("archive", "failed");
          progress.stop();
          throw err;
        });
        progress.update("archive", result.bytesRead, label);
        progress.finish("archive", "done");
        await reportLoad(ctx, progress, result);
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
        const svc = await openContextService(ctx);
        const progress = ctx.progress();
        const stop = new AbortController();
        const options = { format, ...(opts.uncompressed ? { uncompressed: true } : {}), withParents: opts.withParents === true, signal: stop.signal };
        let tracker: ReturnType<typeof saveTracker> | undefined;
        let plan: SavePlan | undefined;
        let carried = 0;
        const { planEntryRanges } = await import("@berth/docker-archive");
        const onPlan = (p: SavePlan) => {
          plan = p;
          tracker = saveTracker(progress, p, planEntryRanges(p), opts.output ? basename(opts.output) : "stdout");
        };
        if (opts.output) {
          const output = opts.output;
          // the library writes beside the target, fsyncs and renames: no partial archive is ever visible
          let written = 0;
          const r = await interruptible(
            () =>
              svc.save(images, output, {
                ...options,
                onPlan,
                onProgress: (p) => {
                  tracker?.advance(p.bytesWritten - written);
                  written = p.bytesWritten;
                },
              }),
            (err) => stop.abort(err),
          ).catch(async (err: unknown) => {
            progress.stop();
            // a signal that came after the rename still means "keep nothing"
            if (err instanceof InterruptedError) await rm(output, { force: true });
            throw err;
          });
          carried = r.carried;
        } else {
          const opened = await svc.openSave(images, { ...options, onPlan });
          carried = opened.carried;
          let written = 0;
          await interruptible(
            () =>
              opened.writeTo(process.stdout, {
                onProgress: (n) => {
                  tracker?.advance(n - written);
                  written = n;
                },
              }),
            (err) => stop.abort(err),
          ).catch((err: unknown) => {
            progress.stop();
            throw err;
          });
        }
        tracker?.done();
        const p = plan!;
        const tags = p.images.reduce((n, i) => n + i.tags.length, 0);
        progress.summary(
          `Saved ${p.images.length} image(s), ${tags} tag(s), ${p.layers} layer(s)${opts.withParents ? `, parent chain (${carried} intermediate config(s))` : ""}: ${humanSize(p.size)} (${opts.format}${opts.uncompressed ? ", uncompressed layers" : ""})`,
          { images: p.images.length, tags, layers: p.layers, bytes: p.size },
        );
      });
  saveCmd(program.command("save"));

  const image = program.commands.find((c) => c.name() === "image");
  if (image) {
    loadCmd(image.command("load"));
    saveCmd(image.command("save"));
  }

  const docker = program
    .command("docker")
    .description("Move images between the store and a Docker daemon (found as the docker CLI finds it)")
    .addHelpText(
      "after",
      `
The daemon is the one the docker CLI would use:
  DOCKER_HOST          unix:///path, tcp://host[:port] or host:port (tcp port default 2375)
  DOCKER_TLS_VERIFY    TLS, checking the daemon's certificate (any non-empty value, even 0)
  DOCKER_TLS           TLS without checking the daemon's certificate
  DOCKER_CERT_PATH     ca.pem, cert.pem, key.pem (default $DOCKER_CONFIG, else ~/.docker)
  DOCKER_CONTEXT       a context from 'docker context create' (else the one 'docker context use' chose);
                       DOCKER_HOST wins over it
ssh:// hosts are not supported yet: forward the socket (ssh -nNT -L /tmp/d.sock:/var/run/docker.sock HOST)
and use DOCKER_HOST=unix:///tmp/d.sock.`,
    );
  docker
    .command("push")
    .description("Load images into the Docker daemon, sending only the layers it lacks")
    .argument("<image...>")
    .option("--full", "send every layer (no incremental load)")
    .addHelpText("after", "\nExamples:\n  DOCKER_HOST=unix:///var/run/docker.sock berth docker push app:1")
    .action(async (images: string[], opts: { full?: boolean }) => {
      const svc = await openContextService(ctx);
      const progress = ctx.progress();
      progress.start("push", `push ${images.join(" ")}`);
      const r = await svc.pushToDaemon(images, { full: opts.full === true });
      progress.update("push", r.bytesSent);
      progress.finish("push", "done");
      for (const l of r.layers) {
        progress.start(l.chainID, short(l.diffID), l.size);
        if (!l.present) progress.update(l.chainID, l.size);
        progress.finish(l.chainID, l.present ? "exists" : "done");
      }
      for (const m of r.messages) ctx.out(`${m}\n`);
      progress.summary(
        `Sent ${humanSize(r.bytesSent)}: ${r.layersSent} layer(s) sent, ${r.layersSkipped} skipped (the ${r.negotiated ? "berth server" : "daemon"} had them)${r.fellBack ? "; the incremental archive was refused, sent the full one" : ""}`,
        { bytesSent: r.bytesSent, archiveSize: r.archiveSize, layersSent: r.layersSent, layersSkipped: r.layersSkipped, fellBack: r.fellBack, negotiated: r.negotiated },
      );
    });
  docker
    .command("pull")
    .description("Copy images from the Docker daemon into the store")
    .argument("<image...>")
    .option("--overwrite-tags", "move tags that already name a different image")
    .action(async (images: string[], opts: { overwriteTags?: boolean }) => {
      const svc = await openContextService(ctx);
      const progress = ctx.progress();
      progress.start("archive", "daemon");
      const result = await svc.pullFromDaemon(images, {
        tagConflict: opts.overwriteTags ? "move" : "keep",
        onProgress: (p) => progress.update("archive", p.bytesRead, `daemon ${entryLabel(p.entry)}`),
      }).catch((err: unknown) => {
        progress.finish("archive", "failed");
        progress.stop();
        throw err;
      });
      progress.update("archive", result.bytesRead, "daemon");
      progress.finish("archive", "done");
      await reportLoad(ctx, progress, result);
    });
}
