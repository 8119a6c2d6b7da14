import type { Command } from "commander";
import { type Context, openContextStore } from "../context.js";
import { humanSize, table } from "../format.js";
import { listImages } from "../imageinfo.js";

/** Register `system df` and `fsck`. */
export function register(program: Command, ctx: Context): void {
  const system = program.command("system").description("Store-wide information and maintenance");
  system
    .command("df")
    .description("Show disk usage: images, layers and build cache")
    .option("--format <format>", "table (default) or json")
    .option("-v, --verbose", "list every image")
    .action(async (opts: { format?: string; verbose?: boolean }) => {
      const store = await openContextStore(ctx);
      const images = await listImages(store);
      // bytes of every layer blob, who holds it
      const layerBlob = new Map<string, number>();
      for (const l of await store.layers.list()) layerBlob.set(l.blob.digest, l.blob.size);
      const tagged = images.filter((i) => i.refs.length > 0);
      const blobsOf = async (ids: typeof images) => {
        const set = new Set<string>();
        for (const info of ids) {
          const m = await store.images.manifest(info.id);
          set.add(m.digest);
          set.add(m.manifest.config.digest);
          for (const l of m.manifest.layers) set.add(l.digest);
        }
        return set;
      };
      let total = 0;
      const sizes = new Map<string, number>();
      for await (const b of store.content.list()) {
        total += b.size;
        sizes.set(b.digest, b.size);
      }
      const imageBlobs = await blobsOf(images);
      const activeBlobs = await blobsOf(tagged);
      const sum = (set: Set<string>) => [...set].reduce((n, d) => n + (sizes.get(d) ?? 0), 0);
      const imagesBytes = sum(imageBlobs);
      const reclaimable = imagesBytes - sum(activeBlobs);
      let cacheCount = 0;
      let cacheBytes = 0;
      let cacheReclaimable = 0;
      try {
        const { openCacheManager } = await import("@berth/cache");
        const mgr = await openCacheManager(store);
        for (const u of await mgr.du()) {
          cacheCount++;
          cacheBytes += u.size;
          if (!u.inUse && !u.shared) cacheReclaimable += u.size;
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException | null)?.code !== "ENOENT") throw err;
      }
      const unreferenced = total - imagesBytes - cacheBytes;
      const rows = [
        { Type: "Images", TotalCount: images.length, Active: tagged.length, Size: imagesBytes, Reclaimable: reclaimable },
        { Type: "Build Cache", TotalCount: cacheCount, Active: 0, Size: cacheBytes, Reclaimable: cacheReclaimable },
        { Type: "Unreferenced", TotalCount: 0, Active: 0, Size: Math.max(0, unreferenced), Reclaimable: Math.max(0, unreferenced) },
      ];
      if (opts.format === "json") {
        for (const r of rows) ctx.out(`${JSON.stringify(r)}\n`);
        return;
      }
      const pct = (a: number, b: number) => (b > 0 ? ` (${Math.round((a / b) * 100)}%)` : "");
      ctx.out(
        table(
          ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
          rows.map((r) => [r.Type, String(r.TotalCount), String(r.Active), humanSize(r.Size), `${humanSize(r.Reclaimable)}${pct(r.Reclaimable, r.Size)}`]),
        ),
      );
      if (opts.verbose) {
        ctx.out("\nImages space usage:\n\n");
        ctx.out(table(["IMAGE ID", "TAGS", "SIZE"], images.map((i) => [i.id.slice(7, 19), String(i.refs.length), humanSize(i.image.size)])));
      }
    });

  program
    .command("fsck")
    .description("Verify every blob's digest and every reference in the store; --repair removes garbage")
    .option("--repair", "remove garbage (stale ingests, orphan blobs and records)")
    .option("--format <format>", "table (default) or json")
    .action(async (opts: { repair?: boolean; format?: string }) => {
      const store = await openContextStore(ctx);
      const progress = ctx.progress();
      progress.start("fsck", `fsck ${ctx.root}`);
      const report = (await store.fsck({ repair: opts.repair === true })) as unknown as Record<string, unknown> & { problems?: Array<Record<string, unknown>> };
      progress.finish("fsck", "done");
      const problems = report.problems ?? [];
      if (opts.format === "json") ctx.out(`${JSON.stringify(report, null, 2)}\n`);
      else for (const p of problems) ctx.out(`${p.kind ?? "problem"}: ${p.path ?? p.digest ?? ""}: ${p.message ?? ""}${p.repaired ? " (repaired)" : ""}\n`);
      progress.summary(`fsck: ${problems.length} problem(s)${opts.repair ? `, ${problems.filter((p) => p.repaired).length} repaired` : ""}`, { problems: problems.length });
      const unrepaired = problems.filter((p) => !p.repaired);
      if (unrepaired.length > 0) process.exitCode = 1;
    });
}
