import type { Command } from "commander";
import { type Context, openContextStore, type Store } from "../context.js";
import { UsageError } from "../exit.js";
import { ago, humanSize, renderRows, renderTemplate, table, unescapeFormat } from "../format.js";
import { type ImageInfo, listImages, repoTag, short } from "../imageinfo.js";

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

function globToRegExp(glob: string): RegExp {
  let re = "";
  for (const c of glob) {
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

interface Filters {
  dangling?: boolean;
  reference: RegExp[];
  before?: number;
  since?: number;
  labels: Array<[string, string | undefined]>;
  until?: number;
}

/** Parse docker-style `--filter key=value` flags. */
async function parseFilters(store: Store, raw: string[], allowed: string[]): Promise<Filters> {
  const f: Filters = { reference: [], labels: [] };
  for (const item of raw) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`bad format of filter (expected name=value): ${item}`);
    const key = item.slice(0, eq);
    const value = item.slice(eq + 1);
    if (!allowed.includes(key)) throw new UsageError(`invalid filter '${key}' (supported: ${allowed.join(", ")})`);
    if (key === "dangling") {
      if (!/^(true|false|1|0)$/i.test(value)) throw new UsageError(`invalid filter 'dangling=${value}'`);
      f.dangling = /^(true|1)$/i.test(value);
    } else if (key === "reference") {
      f.reference.push(globToRegExp(value));
    } else if (key === "before" || key === "since") {
      const id = await store.references.resolve(value);
      const created = Date.parse((await store.images.get(id)).config.created ?? "");
      f[key] = Number.isNaN(created) ? 0 : created;
    } else if (key === "label") {
      const i = value.indexOf("=");
      f.labels.push(i < 0 ? [value, undefined] : [value.slice(0, i), value.slice(i + 1)]);
    } else if (key === "until") {
      f.until = parseUntil(value);
    }
  }
  return f;
}

/** docker's `until` filter: a timestamp (RFC 3339 / unix seconds) or a duration like `24h`, `90m`. */
export function parseUntil(value: string, now = Date.now()): number {
  const dur = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$/.exec(value);
  if (dur) {
    const mult: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
    return now - Number(dur[1]) * mult[dur[2]!]!;
  }
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new UsageError(`invalid until filter ${JSON.stringify(value)} (want a duration like 24h or a timestamp)`);
  return t;
}

function matchesImage(info: ImageInfo, f: Filters): boolean {
  const created = Date.parse(info.created ?? "") || 0;
  if (f.dangling !== undefined && f.dangling !== (info.refs.length === 0)) return false;
  if (f.before !== undefined && !(created < f.before)) return false;
  if (f.since !== undefined && !(created > f.since)) return false;
  if (f.until !== undefined && !(created < f.until)) return false;
  for (const [k, v] of f.labels) {
    const labels = info.image.config.config?.Labels ?? {};
    if (!(k in labels) || (v !== undefined && labels[k] !== v)) return false;
  }
  return true;
}

function rowsFor(info: ImageInfo, f: Filters): Row[] {
  const base = {
    ID: short(info.id),
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
  let refs = info.refs.map(repoTag);
  if (f.reference.length > 0) {
    refs = refs.filter((r) => f.reference.some((re) => re.test(r.repo) || re.test(`${r.repo}:${r.tag}`)));
    if (refs.length === 0) return [];
  }
  if (refs.length === 0) return [{ ...base, Repository: "<none>", Tag: "<none>" }];
  return refs.map((r) => ({ ...base, Repository: r.repo, Tag: r.tag }));
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
  const store = await openContextStore(ctx);
  const filters = await parseFilters(store, opts.filter, ["dangling", "reference", "before", "since", "label", "until"]);
  if (repo) filters.reference.push(globToRegExp(repo.includes(":") ? repo : repo), globToRegExp(`${repo}`));
  const rows: Row[] = [];
  for (const info of await listImages(store)) {
    // like docker: untagged images with children are intermediates, shown only with -a
    if (!opts.all && info.refs.length === 0 && info.children > 0) continue;
    if (!matchesImage(info, filters)) continue;
    rows.push(...rowsFor(info, filters));
  }
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
        const store = await openContextStore(ctx);
        const id = await store.references.resolve(source);
        await store.references.tag(target, id, { force: true });
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
  const store = await openContextStore(ctx);
  const out: Record<string, unknown>[] = [];
  for (const name of names) {
    const id = await store.references.resolve(name);
    const img = await store.images.get(id);
    const c = img.config;
    const refs = await store.references.referencesOf(id);
    const parent = await store.images.getParent(id);
    const last = await store.images.getLastUpdated(id);
    out.push({
      Id: id,
      RepoTags: refs.map((r) => repoTag(r)).filter((r) => r.tag !== "<none>").map((r) => r.familiar),
      RepoDigests: [],
      Parent: parent ?? "",
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
      Size: img.size,
      VirtualSize: img.size,
      RootFS: { Type: c.rootfs.type, Layers: c.rootfs.diff_ids },
      Metadata: { LastTagTime: last ? last.toISOString() : "0001-01-01T00:00:00Z" },
      ManifestDigest: img.manifestDigest,
    });
  }
  if (!opts.format || opts.format === "json") ctx.out(`${JSON.stringify(out, null, 4)}\n`);
  else for (const o of out) ctx.out(`${renderTemplate(unescapeFormat(opts.format), o)}\n`);
}

async function historyAction(ctx: Context, name: string, opts: { trunc: boolean; human: string; quiet?: boolean; format?: string }): Promise<void> {
  const store = await openContextStore(ctx);
  const human = opts.human !== "false";
  const topId = await store.references.resolve(name);
  // The image IDs along the parent chain, keyed by how many history entries each covers.
  const idAtHistoryLen = new Map<number, string>();
  for (let id: string | undefined = topId; id; id = await store.images.getParent(id)) {
    const len = (await store.images.get(id)).config.history?.length ?? 0;
    if (!idAtHistoryLen.has(len)) idAtHistoryLen.set(len, id);
  }
  const img = await store.images.get(topId);
  const history = img.config.history ?? [];
  const layers = await layerSizes(store, img.config.rootfs.diff_ids);
  let layerIndex = 0;
  const entries = history.map((h, i) => {
    const size = h.empty_layer ? 0 : (layers[layerIndex++] ?? 0);
    return { h, i, size };
  });
  const rows = entries.reverse().map(({ h, i, size }) => {
    const id = idAtHistoryLen.get(i + 1);
    const createdBy = h.created_by ?? "";
    const shownBy = opts.trunc && createdBy.length > 45 ? `${createdBy.slice(0, 44)}…` : createdBy;
    return {
      ID: id ? (opts.trunc ? short(id) : id) : "<missing>",
      Id: id ?? "<missing>",
      CreatedAt: h.created ?? "",
      CreatedSince: human ? ago(h.created) : (h.created ?? ""),
      CreatedBy: opts.trunc ? shownBy : createdBy,
      Size: human ? humanSize(size) : String(size),
      SizeBytes: size,
      Comment: h.comment ?? "",
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

/** The size of each layer of an image, by walking its chain. */
async function layerSizes(store: Store, diffIds: readonly string[]): Promise<number[]> {
  const { chainIds } = await import("@berth/digest");
  const sizes: number[] = [];
  for (const c of chainIds(diffIds)) {
    try {
      const l = await store.layers.get(c);
      sizes.push(l.contentSize ?? l.size);
    } catch {
      sizes.push(0);
    }
  }
  return sizes;
}

async function rmiAction(ctx: Context, names: string[], opts: { force?: boolean; prune: boolean }): Promise<void> {
  const store = await openContextStore(ctx);
  const { AlreadyExistsError, FailedPreconditionError } = await import("@berth/digest");
  const { parseReference } = await import("@berth/image-store");
  let failed: unknown;
  for (const name of names) {
    try {
      const id = await store.references.resolve(name);
      const refs = await store.references.referencesOf(id);
      let byRef: string | undefined;
      try {
        const r = parseReference(name);
        if (refs.includes(r.string)) byRef = r.string;
      } catch {
        // an ID or prefix, not a reference
      }
      if (byRef) {
        // removing by name untags first (moby): the image goes only with its last
        // reference, and an image with children is then just left untagged
        await store.references.untag(byRef);
        ctx.out(`Untagged: ${repoTag(byRef).familiar}\n`);
        if (refs.length > 1 || (await store.images.children(id)).length > 0) continue;
        await deleteImage(ctx, store, id, opts.prune);
        continue;
      }
      if (!byRef && refs.length > 1 && !opts.force) {
        throw new AlreadyExistsError(`conflict: unable to delete ${short(id)} (must be forced) - image is referenced in multiple repositories`, {
          code: "ERR_IMAGE_IN_USE",
        });
      }
      const children = await store.images.children(id);
      if (children.length > 0 && !opts.force) {
        throw new FailedPreconditionError(`conflict: unable to delete ${short(id)} (must be forced) - image has dependent child images`, {
          code: "ERR_IMAGE_HAS_CHILDREN",
        });
      }
      await deleteImage(ctx, store, id, opts.prune);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const shown = ctx.globals.debug && typeof code === "string" ? ` [${code}]` : "";
      process.stderr.write(`berth: rmi: ${name}: ${err instanceof Error ? err.message : String(err)}${shown}\n`);
      failed ??= err;
    }
  }
  await store.gc();
  if (failed) throw Object.assign(failed as Error, { reported: true });
}

/** Untag and delete an image, then its untagged childless parents (moby's prune of parents). */
/**
 * Delete an image and collect moby's lines: the image, then each layer of its
 * chain (top first) that nothing else holds any more and so was removed.
 */
async function deleteAndCollect(store: Store, id: string, word: string): Promise<string[]> {
  const chain: string[] = [];
  const img = await store.images.get(id);
  for (let c: string | null | undefined = img.chainID; c; ) {
    chain.push(c);
    c = await store.layers.get(c).then(
      (l) => l.parent,
      () => undefined,
    );
  }
  await store.images.delete(id);
  const removed = new Set<string>((await store.gc()).removedLayers);
  return [`${word}: ${id}`, ...chain.filter((c) => removed.has(c)).map((c) => `${word}: ${c}`)];
}

async function deleteImage(ctx: Context, store: Store, id: string, pruneParents: boolean): Promise<void> {
  for (const ref of await store.references.referencesOf(id)) {
    await store.references.untag(ref);
    ctx.out(`Untagged: ${repoTag(ref).familiar}\n`);
  }
  const parent = await store.images.getParent(id);
  for (const line of await deleteAndCollect(store, id, "Deleted")) ctx.out(`${line}\n`);
  if (pruneParents && parent) {
    const refs = await store.references.referencesOf(parent).catch(() => ["?"]);
    const children = await store.images.children(parent).catch(() => ["?"]);
    if (refs.length === 0 && children.length === 0) await deleteImage(ctx, store, parent, true);
  }
}

async function pruneAction(ctx: Context, opts: { all?: boolean; filter: string[] }): Promise<void> {
  const store = await openContextStore(ctx);
  const filters = await parseFilters(store, opts.filter, ["until", "label"]);
  const before = await diskUsage(store);
  const lines: string[] = [];
  // repeat: deleting a child can make its parent dangling
  for (let changed = true; changed; ) {
    changed = false;
    for (const info of await listImages(store)) {
      if (info.children > 0) continue;
      if (!opts.all && info.refs.length > 0) continue;
      if (!matchesImage(info, filters)) continue;
      for (const ref of info.refs) {
        await store.references.untag(ref);
        lines.push(`untagged: ${repoTag(ref).familiar}`);
      }
      lines.push(...(await deleteAndCollect(store, info.id, "deleted")));
      changed = true;
    }
  }
  await store.gc();
  const freed = Math.max(0, before - (await diskUsage(store)));
  if (lines.length) ctx.out(`Deleted Images:\n${lines.join("\n")}\n\n`);
  ctx.out(`Total reclaimed space: ${humanSize(freed)}\n`);
}

/** Bytes of all blobs in the store. */
export async function diskUsage(store: Store): Promise<number> {
  let total = 0;
  for await (const b of store.content.list()) total += b.size;
  return total;
}
