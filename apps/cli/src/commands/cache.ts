import type { Command } from "commander";
import { type Context, openContextStore } from "../context.js";
import { UsageError } from "../exit.js";
import { ago, humanSize, parseSize, table } from "../format.js";

/** Register `cache du`, `cache prune`, `cache import`, `cache export`. */
export function register(program: Command, ctx: Context): void {
  const cache = program.command("cache").alias("builder").description("Manage the build cache");
  const collect = (v: string, p: string[]) => [...p, v];

  cache
    .command("du")
    .description("Show build cache disk usage")
    .option("--filter <filter>", "id=, parents=, description~=, type=, inuse, mutable, immutable, shared, private, until=DURATION", collect, [])
    .option("-v, --verbose", "one block per record")
    .option("--format <format>", "table (default) or json")
    .action(async (opts: { filter: string[]; verbose?: boolean; format?: string }) => {
      const store = await openContextStore(ctx);
      const { openCacheManager } = await import("@berth/cache");
      const mgr = await openCacheManager(store);
      const usage = await mgr.du({ filters: opts.filter });
      if (opts.format === "json") {
        for (const u of usage) ctx.out(`${JSON.stringify(u)}\n`);
        return;
      }
      if (opts.verbose) {
        for (const u of usage) {
          ctx.out(
            `ID:\t\t${u.id}\nParents:\t${u.parents.join(", ")}\nType:\t\t${u.recordType}\nDescription:\t${u.description}\nCreated at:\t${u.createdAt.toISOString()}\nMutable:\t${u.mutable}\nReclaimable:\t${!u.inUse}\nShared:\t\t${u.shared}\nSize:\t\t${humanSize(u.size)}\nLast used:\t${u.lastUsedAt ? ago(u.lastUsedAt) : "never"}\nUsage count:\t${u.usageCount}\n\n`,
          );
        }
      } else {
        ctx.out(
          table(
            ["ID", "RECLAIMABLE", "SIZE", "LAST ACCESSED"],
            usage.map((u) => [`${u.id.slice(0, 25)}${u.inUse ? "*" : ""}`, String(!u.inUse), humanSize(u.size), u.lastUsedAt ? ago(u.lastUsedAt) : ""]),
          ),
        );
      }
      const total = usage.reduce((n, u) => n + u.size, 0);
      const reclaimable = usage.filter((u) => !u.inUse && !u.shared).reduce((n, u) => n + u.size, 0);
      const shared = usage.filter((u) => u.shared).reduce((n, u) => n + u.size, 0);
      ctx.out(`Shared:\t\t${humanSize(shared)}\nPrivate:\t${humanSize(total - shared)}\nReclaimable:\t${humanSize(reclaimable)}\nTotal:\t\t${humanSize(total)}\n`);
    });

  cache
    .command("prune")
    .description("Remove build cache (least recently used first)")
    .option("-a, --all", "remove all cache, shared records too")
    .option("--keep-storage <size>", "keep this much cache (e.g. 10GB, 512MiB)")
    .option("--filter <filter>", "until=DURATION (keep records used more recently), and du's filters", collect, [])
    .option("-f, --force", "do not prompt (berth never prompts)")
    .action(async (opts: { all?: boolean; keepStorage?: string; filter: string[] }) => {
      const store = await openContextStore(ctx);
      const { openCacheManager } = await import("@berth/cache");
      const mgr = await openCacheManager(store);
      let keepBytes: number | undefined;
      if (opts.keepStorage !== undefined) {
        try {
          keepBytes = parseSize(opts.keepStorage);
        } catch (err) {
          throw new UsageError(`--keep-storage: ${(err as Error).message}`);
        }
      }
      const progress = ctx.progress();
      const r = await mgr.prune({ all: opts.all === true, filters: opts.filter, ...(keepBytes !== undefined ? { keepBytes } : {}) });
      for (const u of r.removed) ctx.out(`Deleted: ${u.id}\n`);
      ctx.out(`Total:\t${humanSize(r.reclaimedBytes)}\n`);
      progress.summary(
        `pruned ${r.removed.length} record(s)${r.snapshotsRemoved.length > 0 ? ` and ${r.snapshotsRemoved.length} extracted chain(s)` : ""}, ${humanSize(r.freedBytes)} freed on disk`,
        { removed: r.removed.length, snapshotsRemoved: r.snapshotsRemoved.length, freedBytes: r.freedBytes },
      );
    });

  cache
    .command("import")
    .description("Import a BuildKit cache: an OCI layout directory or tar (cache manifest), a registry reference, or an image with inline cache")
    .argument("<source>", "OCI layout dir, OCI layout tar, docker://HOST/REPO:TAG (a registry cache), or an image in the store")
    .option("--tag <tag>", "which manifest of the layout's index.json (default: the only one, or latest)")
    .option("--insecure", "reach the registry without TLS verification, or over plain http (loopback registries always are)")
    .addHelpText("after", "\nExamples:\n  berth cache import ./cache-layout\n  berth cache import docker://127.0.0.1:5000/team/app:buildcache")
    .action(async (source: string, opts: { tag?: string; insecure?: boolean }) => {
      const store = await openContextStore(ctx);
      const cacheMod = await import("@berth/cache");
      const mgr = await cacheMod.openCacheManager(store);
      const progress = ctx.progress();
      /** Look every key up (fetching what the lookups need), print key and chain, sum up. */
      const report = async (imp: Awaited<ReturnType<typeof cacheMod.importCache>>) => {
        let found = 0;
        let layers = 0;
        for (const key of imp.keys()) {
          const r = await imp.lookup(key);
          if (!r) continue;
          found++;
          layers = Math.max(layers, r.diffIDs.length);
          await r.ref?.release();
          ctx.out(`${key}\t${r.chainID}\n`);
        }
        progress.summary(`Imported ${found} of ${imp.keys().length} cache key(s) (${imp.kind}), chains of up to ${layers} layer(s)`, { keys: found, layers });
      };
      const { withCacheSource } = await import("@berth/image-service");
      await withCacheSource(
        store,
        source,
        { manager: mgr, insecure: opts.insecure === true, ...(opts.tag ? { tag: opts.tag } : {}), onWarning: (m) => progress.note(`warning: ${m}`) },
        report,
      );
    });

  cache
    .command("export")
    .description("Export a BuildKit cache to a registry or an OCI layout (image-manifest form), relayed from a cache source")
    .argument("<destination>", "docker://HOST/REPO:TAG, oci:DIR[:TAG], oci-archive:FILE[:TAG], or a directory (an OCI layout, tag latest)")
    .requiredOption("--from <source>", "the cache to export: anything `cache import` takes (registry cache, OCI layout dir or tar, image with inline cache)")
    .option("--tag <tag>", "which manifest of the source layout's index.json (default: the only one, or latest)")
    .option("--insecure", "reach registries without TLS verification, or over plain http (loopback registries always are)")
    .addHelpText(
      "after",
      "\nEvery key of the source is looked up (its layers fetched into the store and kept as cache records),\nthen the keys, their links and the chains that resolved are written where BuildKit's\n--cache-from type=registry / type=local and `berth cache import` read them.\n\nExamples:\n  berth cache export docker://127.0.0.1:5000/team/app:buildcache --from ./cache-layout\n  berth cache export ./cache-copy --from docker://registry.example/team/app:buildcache",
    )
    .action(async (destination: string, opts: { from: string; tag?: string; insecure?: boolean }) => {
      const store = await openContextStore(ctx);
      const { openCacheManager } = await import("@berth/cache");
      const { copyCache } = await import("@berth/image-service");
      const { copyReporter } = await import("./registry.js");
      const progress = ctx.progress();
      progress.note(`Exporting cache ${opts.from} to ${destination}`);
      const r = await copyCache(store, opts.from, destination, {
        manager: await openCacheManager(store),
        insecure: opts.insecure === true,
        ...(opts.tag ? { tag: opts.tag } : {}),
        onWarning: (m) => progress.note(`warning: ${m}`),
        onProgress: copyReporter(progress),
      }).catch((err: unknown) => {
        progress.stop();
        throw err;
      });
      const count = (s: string) => r.blobs.filter((b) => b.status === s).length;
      progress.summary(
        `Exported ${r.records} cache key(s), ${r.results} with a layer chain (${r.found} of ${r.keys} found in the source): ${count("uploaded") + count("written")} blob(s) sent, ${count("mounted")} mounted, ${count("exists")} already there; manifest ${r.manifestsWritten > 0 ? "written" : "already there"}`,
        { destination: r.destination, digest: r.digest, records: r.records, results: r.results, keys: r.keys, found: r.found, blobs: r.blobs.length },
      );
      ctx.out(`${r.digest}\n`);
    });
}
