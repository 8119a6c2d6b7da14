import { shortId } from "@berth/digest";
import type { DeleteItem, ImageSummary } from "@berth/image-service";
import type { Command } from "commander";
import { type Context, openContextService } from "../context.js";
import { ago, humanSize, renderRows, renderTemplate, table, unescapeFormat } from "../format.js";

interface Row {
  ID: string;
  Repository: string;
  Tag: string;
  Digest: string;
  ManifestDigest: string;
  CreatedAt: string;
  CreatedSince: string;
  Size: string;
  Containers: string;
  // machine-readable extras for --format json
  Id: string;
  Tags: string[];
  SizeBytes: number;
}

/**
 * Rows as the docker CLI makes them: one per tag; a repository the image has
 * only by digest (`name@sha256:…`) gets one `<none>` row; an image with no
 * reference at all, `<none>:<none>`.
 */
function rowsFor(info: ImageSummary, repoTag: (ref: string) => { repo: string; tag: string; familiar: string }): Row[] {
  const base = {
    ID: shortId(info.id),
    Id: info.id,
    Digest: info.image.manifestDigest,
    ManifestDigest: info.image.manifestDigest,
    CreatedAt: info.created ?? "",
    CreatedSince: ago(info.created),
    Size: humanSize(info.image.size),
    SizeBytes: info.image.size,
    Containers: "N/A",
    Tags: info.refs.map((r) => repoTag(r).familiar),
  };
  const tagged = info.refs.filter((r) => !r.includes("@")).map(repoTag);
  const tagRepos = new Set(tagged.map((t) => t.repo));
  const digestOnly = new Set(info.refs.filter((r) => r.includes("@")).map((r) => repoTag(r).repo));
  for (const repo of tagRepos) digestOnly.delete(repo);
  const rows = [...tagged.map((t) => ({ ...base, Repository: t.repo, Tag: t.tag })), ...[...digestOnly].map((repo) => ({ ...base, Repository: repo, Tag: "<none>" }))];
  return rows.length > 0 ? rows : [{ ...base, Repository: "<none>", Tag: "<none>" }];
}

const IMAGE_HEADERS: Record<string, string> = {
  ID: "IMAGE ID",
  Id: "IMAGE ID",
  Repository: "REPOSITORY",
  Tag: "TAG",
  Digest: "DIGEST",
  ManifestDigest: "MANIFEST DIGEST",
  CreatedSince: "CREATED",
  CreatedAt: "CREATED AT",
  Size: "SIZE",
  Containers: "CONTAINERS",
};

const HISTORY_HEADERS: Record<string, string> = {
  ID: "IMAGE",
  Id: "IMAGE",
  CreatedSince: "CREATED",
  CreatedAt: "CREATED AT",
  CreatedBy: "CREATED BY",
  Size: "SIZE",
  Comment: "COMMENT",
};

function printRows(ctx: Context, rows: Row[], opts: { quiet?: boolean; digests?: boolean; format?: string; noTrunc?: boolean }): void {
  if (opts.quiet) {
    for (const r of rows) ctx.out(`${opts.noTrunc ? r.Id : r.ID}\n`);
    return;
  }
  if (opts.format === "json") {
    for (const r of rows) {
      ctx.out(
        `${JSON.stringify({
          ID: r.Id,
          ManifestDigest: r.ManifestDigest,
          Repository: r.Repository,
          Tag: r.Tag,
          Tags: r.Tags,
          Size: r.SizeBytes,
          CreatedAt: r.CreatedAt,
          CreatedSince: r.CreatedSince,
        })}\n`,
      );
    }
    return;
  }
  if (opts.format && opts.format !== "table") {
    ctx.out(renderRows(opts.format, rows, IMAGE_HEADERS));
    return;
  }
  const headers = opts.digests
    ? ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    : ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"];
  ctx.out(
    table(
      headers,
      rows.map((r) =>
        opts.digests
          ? [r.Repository, r.Tag, r.Digest, opts.noTrunc ? r.Id : r.ID, r.CreatedSince, r.Size]
          : [r.Repository, r.Tag, opts.noTrunc ? r.Id : r.ID, r.CreatedSince, r.Size],
      ),
    ),
  );
}

async function imagesAction(
  ctx: Context,
  repo: string | undefined,
  opts: { all?: boolean; quiet?: boolean; digests?: boolean; filter: string[]; format?: string; trunc?: boolean },
): Promise<void> {
  const svc = await openContextService(ctx);
  const { parseFilterFlags, repoTag } = await import("@berth/image-service");
  const filters = parseFilterFlags(repo ? [...opts.filter, `reference=${repo}`] : opts.filter);
  const onUnusable = (id: string, reason: Error) => ctx.info(`berth: warning: image ${id.slice(7, 19)} is not usable and not listed (${reason.message}); berth fsck --repair removes it`);
  const rows = (await svc.list({ all: opts.all === true, filters, onUnusable })).flatMap((info) => rowsFor(info, repoTag));
  printRows(ctx, rows, { ...opts, noTrunc: opts.trunc === false });
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** Register `images`, `image ls/inspect/prune/history/tag/rm`, `history`, `tag`, `rmi`. */
export function register(program: Command, ctx: Context): void {
  const addListOptions = (cmd: Command) =>
    cmd
      .argument("[repository]", "only images of this repository (glob)")
      .option("-a, --all", "show all images, intermediate ones too")
      .option("-q, --quiet", "only image IDs")
      .option("--digests", "show manifest digests")
      .option("--no-trunc", "do not truncate IDs")
      .option("-f, --filter <filter>", "dangling=true|false, reference=GLOB, before=IMAGE, since=IMAGE, label=K[=V], until=TIME", collect, [])
      .option("--format <format>", "table, json, or a template such as '{{.ID}} {{.Repository}}'")
      .action((repo: string | undefined, opts) => imagesAction(ctx, repo, opts));

  addListOptions(program.command("images").description("List images").addHelpText("after", "\nExamples:\n  berth images\n  berth images -a --digests\n  berth images --filter dangling=true -q\n  berth images --format json"));

  const image = program.command("image").description("Manage images");
  addListOptions(image.command("ls").alias("list").description("List images"));

  image
    .command("inspect")
    .description("Show details of images as `docker image inspect` does (plus ManifestDigest)")
    .argument("<image...>", "name, ID or ID prefix")
    .option("-f, --format <format>", "json (default) or a template such as '{{.Id}}'")
    .action(async (names: string[], opts: { format?: string }) => inspectAction(ctx, names, opts));

  program
    .command("inspect")
    .description("Alias of `image inspect`")
    .argument("<image...>")
    .option("-f, --format <format>", "json (default) or a template")
    .action(async (names: string[], opts: { format?: string }) => inspectAction(ctx, names, opts));

  const historyCmd = (cmd: Command) =>
    cmd
      .description("Show the history of an image")
      .argument("<image>")
      .option("--no-trunc", "do not truncate output")
      .option("-H, --human <bool>", "human readable sizes and dates", "true")
      .option("-q, --quiet", "only image IDs")
      .option("--format <format>", "table, json, or a template such as '{{.CreatedBy}}'")
      .action(async (name: string, opts: { trunc: boolean; human: string; quiet?: boolean; format?: string }) => historyAction(ctx, name, opts));
  historyCmd(program.command("history"));
  historyCmd(image.command("history"));

  const tagCmd = (cmd: Command) =>
    cmd
      .description("Create a tag TARGET that refers to SOURCE")
      .argument("<source>", "name, ID or ID prefix")
      .argument("<target>", "new reference, e.g. myapp:1.0")
      .action(async (source: string, target: string) => {
        await (await openContextService(ctx)).tag(source, target);
      });
  tagCmd(program.command("tag"));
  tagCmd(image.command("tag"));

  const rmiCmd = (cmd: Command) =>
    cmd
      .description("Remove images (untag first; images with children need -f)")
      .argument("<image...>")
      .option("-f, --force", "remove an image with several tags or with children")
      .option("--no-prune", "do not delete untagged parents")
      .action(async (names: string[], opts: { force?: boolean; prune: boolean }) => rmiAction(ctx, names, opts));
  rmiCmd(program.command("rmi"));
  rmiCmd(image.command("rm").alias("remove"));

  image
    .command("prune")
    .description("Remove dangling images (with -a: every image without a container — berth has none, so all)")
    .option("-a, --all", "remove all unused images, not just dangling ones")
    .option("--filter <filter>", "until=TIME, label=K[=V]", collect, [])
    .option("-f, --force", "do not prompt (berth never prompts; accepted for docker compatibility)")
    .action(async (opts: { all?: boolean; filter: string[] }) => pruneAction(ctx, opts));
}

async function inspectAction(ctx: Context, names: string[], opts: { format?: string }): Promise<void> {
  const svc = await openContextService(ctx);
  const out: Record<string, unknown>[] = [];
  for (const name of names) {
    const d = await svc.inspect(name);
    const c = d.config;
    out.push({
      Id: d.id,
      RepoTags: d.repoTags,
      RepoDigests: d.repoDigests,
      Parent: d.parent ?? "",
      Comment: c.comment ?? "",
      Created: c.created ?? "",
      Container: c.container ?? "",
      ContainerConfig: c.container_config ?? {},
      DockerVersion: c.docker_version ?? "",
      Author: c.author ?? "",
      Config: c.config ?? null,
      Architecture: c.architecture,
      ...(c.variant ? { Variant: c.variant } : {}),
      Os: c.os,
      ...(c["os.version"] ? { OsVersion: c["os.version"] } : {}),
      Size: d.image.size,
      VirtualSize: d.image.size,
      RootFS: { Type: c.rootfs.type, Layers: c.rootfs.diff_ids },
      Metadata: { LastTagTime: d.lastTagTime ? d.lastTagTime.toISOString() : "0001-01-01T00:00:00Z" },
      ManifestDigest: d.image.manifestDigest,
    });
  }
  if (!opts.format || opts.format === "json") ctx.out(`${JSON.stringify(out, null, 4)}\n`);
  else for (const o of out) ctx.out(`${renderTemplate(unescapeFormat(opts.format), o)}\n`);
}

async function historyAction(ctx: Context, name: string, opts: { trunc: boolean; human: string; quiet?: boolean; format?: string }): Promise<void> {
  const svc = await openContextService(ctx);
  const human = opts.human !== "false";
  const rows = (await svc.history(name)).map((h) => {
    const shownBy = opts.trunc && h.createdBy.length > 45 ? `${h.createdBy.slice(0, 44)}…` : h.createdBy;
    return {
      ID: h.id ? (opts.trunc ? shortId(h.id) : h.id) : "<missing>",
      Id: h.id ?? "<missing>",
      CreatedAt: h.created ?? "",
      CreatedSince: human ? ago(h.created) : (h.created ?? ""),
      CreatedBy: shownBy,
      Size: human ? humanSize(h.size) : String(h.size),
      SizeBytes: h.size,
      Comment: h.comment,
    };
  });
  if (opts.quiet) {
    for (const r of rows) ctx.out(`${r.ID}\n`);
  } else if (opts.format === "json") {
    for (const r of rows) ctx.out(`${JSON.stringify({ ID: r.Id, CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy, Size: r.SizeBytes, Comment: r.Comment })}\n`);
  } else if (opts.format && opts.format !== "table") {
    ctx.out(renderRows(opts.format, rows, HISTORY_HEADERS));
  } else {
    ctx.out(table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], rows.map((r) => [r.ID, r.CreatedSince, r.CreatedBy, r.Size, r.Comment])));
  }
}

/** A delete report line as docker prints it (`Untagged: x`, `Deleted: sha256:…`). */
const deleteLine = (item: DeleteItem, word: "Untagged" | "untagged", deleted: "Deleted" | "deleted") =>
  "untagged" in item ? `${word}: ${item.untagged}` : `${deleted}: ${item.deleted}`;

async function rmiAction(ctx: Context, names: string[], opts: { force?: boolean; prune: boolean }): Promise<void> {
  const svc = await openContextService(ctx);
  let failed: Error | undefined;
  for (const outcome of await svc.remove(names, { force: opts.force === true, prune: opts.prune })) {
    for (const item of outcome.items) ctx.out(`${deleteLine(item, "Untagged", "Deleted")}\n`);
    if (outcome.error) {
      const code = (outcome.error as { code?: unknown }).code;
      const shown = ctx.globals.debug && typeof code === "string" ? ` [${code}]` : "";
      process.stderr.write(`berth: rmi: ${outcome.name}: ${outcome.error.message}${shown}\n`);
      failed ??= outcome.error;
    }
  }
  if (failed) throw Object.assign(failed, { reported: true });
}

async function pruneAction(ctx: Context, opts: { all?: boolean; filter: string[] }): Promise<void> {
  const svc = await openContextService(ctx);
  const { parseFilterFlags } = await import("@berth/image-service");
  const r = await svc.prune({ all: opts.all === true, filters: parseFilterFlags(opts.filter) });
  if (r.deleted.length) ctx.out(`Deleted Images:\n${r.deleted.map((i) => deleteLine(i, "untagged", "deleted")).join("\n")}\n\n`);
  ctx.out(`Total reclaimed space: ${humanSize(r.spaceReclaimed)}\n`);
}
