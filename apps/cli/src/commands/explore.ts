/**
 * `berth explore IMAGE`: the explorer page's URL for an image — on the
 * `berth serve` already answering at `--url`, else on a server this command
 * starts in the foreground (until Ctrl-C) — and `berth explore --ci IMAGE`:
 * dive's efficiency and wasted bytes against thresholds, exiting 1 below
 * them, as `dive --ci` does. The numbers come from `@berth/image-service`'s
 * `explainImage`; this file only formats them.
 *
 * An image in a registry is explored without pulling it (`explainRemoteImage`,
 * page `#/remote/{reference}`) when the name is not in the store and names a
 * registry (its first component has a `.` or a `:`, or is `localhost`: the
 * rule `berth pull` parses references by), or with `--remote` (for Docker
 * Hub's short names).
 * @module
 */
import { hasCode } from "@berth/digest";
import type { ImageService } from "@berth/image-service";
import { parseReference } from "@berth/oci";
import type { Command } from "commander";
import { type Context, closeContextStore, openContextService } from "../context.js";
import { EXIT, UsageError } from "../exit.js";
import { humanSize, parseSize, table } from "../format.js";

interface ExploreOptions {
  ci?: boolean;
  remote?: boolean;
  platform?: string;
  insecure?: boolean;
  lowestEfficiency: string;
  highestWastedBytes: string;
  highestUserWastedPercent: string;
  url: string;
}

/** A ratio option (0…1), or undefined when "disabled". */
function ratio(flag: string, value: string): number | undefined {
  if (value === "disabled") return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0 || n > 1) throw new UsageError(`invalid ${flag} ${JSON.stringify(value)} (want a ratio 0…1, or "disabled")`);
  return n;
}

/** A byte-size option, or undefined when "disabled". */
function size(flag: string, value: string): number | undefined {
  if (value === "disabled") return undefined;
  try {
    return parseSize(value);
  } catch {
    throw new UsageError(`invalid ${flag} ${JSON.stringify(value)} (want a size like 20MB or 20MiB, or "disabled")`);
  }
}

/** The explorer's answer at `base` for `name`, or undefined when nothing (or something else) answers there. */
async function probe(base: string, name: string): Promise<{ id: string } | "not-found" | undefined> {
  try {
    const r = await fetch(`${base}/ui/api/images/${encodeURIComponent(name)}`, { signal: AbortSignal.timeout(2000) });
    if (r.status === 404 && ((await r.json()) as { code?: string }).code === "ERR_IMAGE_NOT_FOUND") return "not-found";
    if (!r.ok || !(r.headers.get("content-type") ?? "").startsWith("application/json")) return undefined;
    const body = (await r.json()) as { id?: unknown };
    return typeof body.id === "string" ? { id: body.id } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `name` is to be explored in its registry: `--remote`, or not in
 * the store and naming a registry explicitly (`127.0.0.1:5000/app:1`,
 * `registry.example/team/app`, `localhost/app`, `docker.io/library/busybox`).
 */
async function isRemote(svc: ImageService, name: string, forced: boolean | undefined): Promise<boolean> {
  if (forced) return true;
  try {
    await svc.inspect(name);
    return false;
  } catch (err) {
    if (!hasCode(err, "ERR_IMAGE_NOT_FOUND")) throw err;
  }
  const slash = name.indexOf("/");
  const first = slash < 0 ? "" : name.slice(0, slash);
  if (!(/[.:]/.test(first) || first === "localhost")) return false;
  try {
    parseReference(name);
    return true;
  } catch {
    return false;
  }
}

/** Whether a berth explorer answers at `base` (for a remote reference, any store's will do). */
async function explorerAt(base: string): Promise<boolean> {
  try {
    const r = await fetch(`${base}/ui/api/images`, { signal: AbortSignal.timeout(2000) });
    return r.ok && (r.headers.get("content-type") ?? "").startsWith("application/json") && Array.isArray(await r.json());
  } catch {
    return false;
  }
}

/** Register `berth explore`. */
export function register(program: Command, ctx: Context): void {
  program
    .command("explore")
    .description("Explore an image's layers, files and wasted space: print the explorer page's URL, or check thresholds with --ci")
    .argument("<image>", "image name, ID or ID prefix; or REGISTRY/REPO[:TAG|@DIGEST] of an image in a registry")
    .option("--ci", "print dive's efficiency and wasted bytes and exit 1 when a threshold is crossed (no server)")
    .option("--lowest-efficiency <ratio>", "--ci: fail below this efficiency (0…1, or disabled)", "0.9")
    .option("--highest-wasted-bytes <size>", "--ci: fail above this many wasted bytes (20MB, 20MiB…, or disabled)", "disabled")
    .option("--highest-user-wasted-percent <ratio>", "--ci: fail above this ratio of wasted bytes to the bytes of all layers but the first (or disabled)", "0.1")
    .option("--url <base>", "where `berth serve` answers (when nothing does, one is started there)", "http://127.0.0.1:5000")
    .option("--remote", "explore the image in its registry (default when the name is not in the store and names a registry)")
    .option("--platform <os/arch[/variant]>", "remote: the platform to choose from a multi-platform image (default: this machine's)")
    .option("--insecure", "remote --ci: reach the registry without TLS verification, or over plain http (loopback registries always are)")
    .addHelpText(
      "after",
      `
Efficiency and wasted bytes are dive's (see @berth/image-service's README): the thresholds'
defaults are dive's --ci defaults.

An image in a registry is read without pulling it: its manifest, config and only the layer
blobs whose file trees are not cached in the store yet.

Examples:
  berth explore app:1                  # prints http://127.0.0.1:5000/ui/#/image/app%3A1
  berth explore --ci app:1 --lowest-efficiency 0.9 --highest-wasted-bytes 20MB
  berth explore 127.0.0.1:5001/team/app:1          # prints …/ui/#/remote/127.0.0.1%3A5001%2Fteam%2Fapp%3A1
  berth explore --ci --remote --platform linux/arm64 busybox`,
    )
    .action(async (name: string, opts: ExploreOptions) => {
      if (opts.ci) return ci(ctx, name, opts);
      let base: URL;
      try {
        base = new URL(opts.url);
      } catch {
        throw new UsageError(`invalid --url ${JSON.stringify(opts.url)}`);
      }
      if (base.protocol !== "http:" && base.protocol !== "https:") throw new UsageError(`invalid --url ${JSON.stringify(opts.url)} (want http:// or https://)`);
      const origin = base.origin;
      const svc = await openContextService(ctx);
      const remote = await isRemote(svc, name, opts.remote);
      const platform = remote && opts.platform ? `?platform=${encodeURIComponent(opts.platform)}` : "";
      const page = (at: string) => (remote ? `${at}/ui/${platform}#/remote/${encodeURIComponent(name)}` : `${at}/ui/#/image/${encodeURIComponent(name)}`);
      if (remote && (await explorerAt(origin))) {
        ctx.out(`${page(origin)}\n`);
        return;
      }
      const running = remote ? undefined : await probe(origin, name);
      const { id } = remote ? { id: "" } : await svc.inspect(name); // a local image must exist in this store
      if (running !== undefined) {
        if (running === "not-found" || running.id !== id) {
          throw new UsageError(`the server at ${origin} serves another store (it does not have ${name} as ${id}); give --url of one serving ${ctx.root}, or stop it`);
        }
        ctx.out(`${page(origin)}\n`);
        return;
      }
      if (base.hostname !== "127.0.0.1" && base.hostname !== "localhost") {
        throw new UsageError(`nothing answers at ${origin}; start \`berth serve\` there, or give a loopback --url to have one started`);
      }
      // Nothing answers there: serve the store in the foreground, as `berth serve` would.
      await closeContextStore();
      const { serveStore } = await import("@berth/server");
      const server = await serveStore({ root: ctx.root, host: base.hostname, port: Number(base.port || 80), log: { format: "none" }, handleSignals: true });
      ctx.out(`${page(server.url)}\n`);
      ctx.info(`berth explore: started a server for ${ctx.root} at ${server.url} (Ctrl-C stops it; \`berth serve\` runs one for good)`);
      await server.closed;
    });
}

/** `--ci`: the numbers, then each rule PASS or FAIL; exit 1 when one fails. */
async function ci(ctx: Context, name: string, opts: ExploreOptions): Promise<void> {
  const lowest = ratio("--lowest-efficiency", opts.lowestEfficiency);
  const highestBytes = size("--highest-wasted-bytes", opts.highestWastedBytes);
  const highestPercent = ratio("--highest-user-wasted-percent", opts.highestUserWastedPercent);
  const svc = await openContextService(ctx);
  const x = (await isRemote(svc, name, opts.remote))
    ? await svc.explainRemote(name, { ...(opts.platform !== undefined ? { platform: opts.platform } : {}), insecure: opts.insecure === true })
    : await svc.explain(name);
  const e = x.efficiency;
  const pct = e.userWastedPercent;
  ctx.out(`image: ${x.remote?.reference ?? x.repoTags[0] ?? x.id}${x.remote?.platform ? ` (${x.remote.platform})` : ""}\n`);
  ctx.out(`efficiency: ${(e.efficiency * 100).toFixed(4)} %\n`);
  ctx.out(`wasted bytes: ${e.wastedBytes} (${humanSize(e.wastedBytes)})\n`);
  ctx.out(`user wasted percent: ${pct === null ? "inf" : `${(pct * 100).toFixed(4)} %`}\n`);
  if (e.files.length > 0) {
    ctx.out("\ninefficient files:\n");
    ctx.out(table(["COUNT", "TOTAL SPACE", "PATH"], e.files.slice(0, 20).map((f) => [String(f.occurrences.length), humanSize(f.cumulativeSize), `/${f.path}`])));
    if (e.files.length > 20) ctx.out(`(${e.files.length - 20} more)\n`);
  }
  ctx.out("\n");
  const rules: Array<[string, number | undefined, boolean, string]> = [
    ["lowest-efficiency", lowest, lowest !== undefined && e.efficiency < lowest, `${e.efficiency.toFixed(4)} < ${lowest}`],
    ["highest-wasted-bytes", highestBytes, highestBytes !== undefined && e.wastedBytes > highestBytes, `${e.wastedBytes} > ${highestBytes}`],
    ["highest-user-wasted-percent", highestPercent, highestPercent !== undefined && (pct === null || pct > highestPercent), `${pct ?? "inf"} > ${highestPercent}`],
  ];
  let failed = 0;
  for (const [rule, limit, fail, why] of rules) {
    if (limit === undefined) ctx.out(`SKIP ${rule}: disabled\n`);
    else if (fail) {
      failed++;
      ctx.out(`FAIL ${rule}: ${why}\n`);
    } else ctx.out(`PASS ${rule}\n`);
  }
  ctx.out(failed ? `\n${failed} rule(s) failed\n` : "\nall rules passed\n");
  if (failed) process.exitCode = EXIT.failure;
}
