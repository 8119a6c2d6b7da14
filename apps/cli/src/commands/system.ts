import type { Command } from "commander";
import { type Context, openContextService } from "../context.js";
import { humanSize, table } from "../format.js";

/** Register `system df` and `fsck`. */
export function register(program: Command, ctx: Context): void {
  const system = program.command("system").description("Store-wide information and maintenance");
  system
    .command("df")
    .description("Show disk usage: images, build cache, snapshots (extracted trees) and unreferenced blobs")
    .option("--format <format>", "table (default) or json")
    .option("-v, --verbose", "list every image")
    .action(async (opts: { format?: string; verbose?: boolean }) => {
      const du = await (await openContextService(ctx)).diskUsage();
      const rows = [
        { Type: "Images", TotalCount: du.images.count, Active: du.images.active, Size: du.images.size, Reclaimable: du.images.reclaimable },
        { Type: "Build Cache", TotalCount: du.buildCache.count, Active: du.buildCache.active, Size: du.buildCache.size, Reclaimable: du.buildCache.reclaimable },
        { Type: "Snapshots", TotalCount: du.snapshots.count, Active: du.snapshots.active, Size: du.snapshots.size, Reclaimable: du.snapshots.reclaimable },
        { Type: "Unreferenced", TotalCount: 0, Active: 0, Size: du.unreferenced, Reclaimable: du.unreferenced },
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
        ctx.out(table(["IMAGE ID", "TAGS", "SIZE"], du.perImage.map((i) => [i.id.slice(7, 19), String(i.refs.length), humanSize(i.image.size)])));
      }
    });

  program
    .command("fsck")
    .description("Verify every blob's digest and every reference in the store; exit 1 only for damage (garbage left by interrupted operations goes with the next write or --repair)")
    .option("--repair", "remove garbage and fix what can be fixed (dangling tags, lost holds, broken records)")
    .option("--format <format>", "table (default) or json")
    .action(async (opts: { repair?: boolean; format?: string }) => {
      const svc = await openContextService(ctx);
      const progress = ctx.progress();
      progress.start("fsck", `fsck ${ctx.root}`);
      const report = await svc.fsck({ repair: opts.repair === true });
      progress.finish("fsck", "done");
      const problems = report.problems;
      if (opts.format === "json") ctx.out(`${JSON.stringify(report, null, 2)}\n`);
      else for (const p of problems) ctx.out(`${p.kind}: ${p.path}: ${p.message}${p.garbage ? " (garbage)" : ""}${p.repaired ? " (repaired)" : ""}\n`);
      const damage = problems.filter((p) => !p.garbage);
      const g = report.garbage;
      const garbageNote =
        g.count === 0
          ? ""
          : `; ${g.count} garbage item(s), ${humanSize(g.bytes)}, left by interrupted operations${opts.repair ? "" : " (the next write removes them, or now: berth fsck --repair)"}`;
      progress.summary(
        `fsck: ${damage.length} problem(s)${opts.repair ? `, ${damage.filter((p) => p.repaired).length} repaired` : ""}${garbageNote}`,
        { problems: damage.length, garbage: g.count, garbageBytes: g.bytes },
      );
      if (!report.ok) process.exitCode = 1;
    });
}
