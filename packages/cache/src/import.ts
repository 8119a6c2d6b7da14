/**
 * Cache import (after BuildKit's `cache/remotecache/import.go`, `v1/parse.go`
 * and the early `cache/cacheimport`): read a cache manifest — the index form
 * with an `application/vnd.buildkit.cacheconfig.v0` entry, the image-manifest
 * form with that config, the v0 `Items` format, or the inline cache
 * (`moby.buildkit.cache.v0`) in an image config — then probe keys and look
 * them up: fetch the layer chain in parallel (each blob verified), register it
 * in the layer store and return its ChainID.
 * @module
 */
import { coalesceChunks, DataIntegrityError, type Digest, hasCode, InvalidArgumentError, isSha256Digest, NotFoundError, parseDigest } from "@berth/digest";
import type { LayerStore } from "@berth/layer-store";
import { INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MEDIA_TYPE_BUILDKIT_CACHE_CONFIG } from "@berth/oci";
import { type BlobRef, type Fetcher, openLayout } from "./fetcher.js";
import type { CacheManager, CacheRef } from "./records.js";
import { CacheErrorCode } from "./errors.js";

/** Media type of BuildKit's cache config blob (both the records and the old items format). */
export const CACHE_CONFIG_MEDIA_TYPE = MEDIA_TYPE_BUILDKIT_CACHE_CONFIG;
/** The image-config field BuildKit's inline cache lives in. */
export const INLINE_CACHE_FIELD = "moby.buildkit.cache.v0";
/** Annotation carrying a layer's DiffID (containerd's `LabelUncompressed`). */
export const ANNOTATION_UNCOMPRESSED = "containerd.io/uncompressed";

const MAX_DOC = 4 << 20; // BuildKit reads cache configs up to 1 MiB; allow more, still bounded

/** A link from a cache record to a key it was computed from (BuildKit's `CacheInput`). */
export interface CacheInput {
  key: Digest;
  /** BuildKit's selector (a content checksum for content-based keys, a path); empty when none. */
  selector?: string;
}

/** A layer blob of the cache, with what is known about it. */
export interface CacheLayerBlob {
  digest: Digest;
  size?: number;
  mediaType?: string;
  diffID?: Digest;
  createdAt?: string;
  description?: string;
}

/** One way a cache key resolves: a layer chain (bottom first). */
export interface CacheChain {
  layers: CacheLayerBlob[];
  createdAt?: string;
}

/** Result of {@link CacheImport.lookup}. */
export interface LookupResult {
  /** ChainID of the registered chain. */
  chainID: Digest;
  /** DiffIDs of the chain, bottom first. */
  diffIDs: Digest[];
  /** A ref to the cache record of the chain, when the import has a cache manager. */
  ref?: CacheRef;
}

/** An imported cache manifest, ready to answer. */
export interface CacheImport {
  /** Which format it was: `records` (cacheconfig v0), `items` (early v0), `inline` (image config). */
  readonly kind: "records" | "items" | "inline";
  /** Every cache key the manifest names. */
  keys(): Digest[];
  /** True when `key` names a result whose blobs the source has. */
  probe(key: Digest | string): boolean;
  /** The chains `key` resolves to (newest first), without fetching. */
  chains(key: Digest | string): CacheChain[];
  /**
   * Fetch the newest chain of `key` (blobs in parallel, each verified against
   * digest, size and DiffID), register it, and return its ChainID; `undefined`
   * when the key is unknown or has no result.
   */
  lookup(key: Digest | string): Promise<LookupResult | undefined>;
  /**
   * Cache keys for a content key: the items format's `ContentKey` mapping; in
   * the records formats, the records having an input whose selector is the
   * content key (BuildKit's content-based selectors).
   */
  contentMapping(contentKey: Digest | string): Digest[];
  /**
   * What `key` was computed from, as the cache config links it: per input,
   * the keys (and selectors) it may come from. Empty for the items and inline
   * formats' keys without links. With {@link lookup}'s ChainIDs this is an
   * `ExportRecord` (`planCacheExport`): how a cache is relayed.
   */
  inputs(key: Digest | string): CacheInput[][];
}

/** Options of {@link importCache}. */
export interface ImportCacheOptions {
  /** The manifest to read (default: from the layout's index.json, see `tag`). */
  manifest?: BlobRef & { mediaType?: string };
  /** Tag (`org.opencontainers.image.ref.name`) in index.json; default: the only entry, or `latest`. */
  tag?: string;
  /**
   * Record looked-up chains as cache records (which hold their layers). Without
   * a manager or `holder`, looked-up layers are protected only by a lease that
   * ends with the lookup: the caller must acquire them before the next GC.
   */
  manager?: CacheManager;
  /** Acquire each looked-up chain's top layer for this layer-store holder (e.g. `"image:<id>"`). */
  holder?: string;
  /** Parallel blob fetches. Default 4. */
  concurrency?: number;
  /**
   * When given, a layer blob the source cannot deliver (it is gone, the
   * source fails) makes the lookup a miss instead of an error, as BuildKit
   * does (buildkit#2836): called with the key and the error, and the lookup
   * resolves undefined. Content that does not verify still throws.
   */
  onFetchError?(key: Digest, err: unknown): void;
}

function bad(msg: string, cause?: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`cache manifest: ${msg}`, { code: CacheErrorCode.INVALID_CACHE_CONFIG, ...(cause ? { cause } : {}) });
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw bad(`${what} is not valid JSON`, err);
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optDigest(v: unknown, what: string): Digest | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string" || !isSha256Digest(v)) throw bad(`${what} is not a sha256 digest: ${JSON.stringify(v)}`);
  return v;
}

interface Desc {
  mediaType?: string;
  digest: Digest;
  size?: number;
  annotations?: Record<string, string>;
}

function desc(v: unknown, what: string): Desc {
  if (!isObj(v)) throw bad(`${what} is not a descriptor`);
  const digest = optDigest(v.digest, `${what}.digest`);
  if (!digest) throw bad(`${what} has no digest`);
  const size = typeof v.size === "number" && Number.isSafeInteger(v.size) && v.size >= 0 ? v.size : undefined;
  if (v.size !== undefined && size === undefined) throw bad(`${what}.size is not a size`);
  return {
    digest,
    ...(size !== undefined ? { size } : {}),
    ...(typeof v.mediaType === "string" ? { mediaType: v.mediaType } : {}),
    ...(isObj(v.annotations) ? { annotations: v.annotations as Record<string, string> } : {}),
  };
}

/** Case-insensitive field access (Go's encoding/json matches names that way). */
function field(o: Record<string, unknown>, name: string): unknown {
  if (name in o) return o[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k];
  return undefined;
}

function detectType(doc: Record<string, unknown>, declared?: string): "index" | "manifest" {
  const mt = typeof doc.mediaType === "string" ? doc.mediaType : declared;
  if (mt && INDEX_MEDIA_TYPES.has(mt)) return "index";
  if (mt && MANIFEST_MEDIA_TYPES.has(mt)) return "manifest";
  if (Array.isArray(doc.manifests)) return "index";
  if (isObj(doc.config) && Array.isArray(doc.layers)) return "manifest";
  throw bad(`unsupported or uninferrable manifest type ${JSON.stringify(mt ?? "")}`);
}

interface Parsed {
  kind: CacheImport["kind"];
  byKey: Map<Digest, CacheChain[]>;
  byContent: Map<Digest, Digest[]>;
  /** Records' input links, by key (records format only). */
  inputs?: Map<Digest, CacheInput[][]>;
}

/** The records format (`layers` + `records`), given the blobs the source provides. */
export function parseCacheConfig(config: unknown, provided: Map<Digest, Desc>, kind: "records" | "inline" = "records"): Parsed {
  if (!isObj(config)) throw bad("cache config is not an object");
  const layersRaw = config.layers ?? [];
  const recordsRaw = config.records ?? [];
  if (!Array.isArray(layersRaw) || !Array.isArray(recordsRaw)) throw bad("layers and records must be arrays");
  const layers = layersRaw.map((l, i) => {
    if (!isObj(l)) throw bad(`layers[${i}] is not an object`);
    const blob = optDigest(l.blob, `layers[${i}].blob`);
    if (!blob) throw bad(`layers[${i}] has no blob`);
    const parent = l.parent === undefined ? 0 : l.parent;
    if (typeof parent !== "number" || !Number.isInteger(parent)) throw bad(`layers[${i}].parent is not an index`);
    const ann = isObj(l.annotations) ? l.annotations : {};
    return {
      blob,
      parent,
      diffID: optDigest(ann.diffID, `layers[${i}].annotations.diffID`),
      mediaType: typeof ann.mediaType === "string" ? ann.mediaType : undefined,
      size: typeof ann.size === "number" ? ann.size : undefined,
      createdAt: typeof ann.createdAt === "string" ? ann.createdAt : undefined,
    };
  });
  const blobOf = (i: number): CacheLayerBlob | undefined => {
    const l = layers[i] as (typeof layers)[number];
    const d = provided.get(l.blob);
    if (!d) return undefined; // the source lacks the blob: the result is skipped, as BuildKit does
    const diffID = l.diffID ?? optDigest(d.annotations?.[ANNOTATION_UNCOMPRESSED], `descriptor ${l.blob} annotation`);
    const createdAt = l.createdAt ?? d.annotations?.["buildkit/createdat"];
    const description = d.annotations?.["buildkit/description"];
    return {
      digest: l.blob,
      ...((d.size ?? l.size) !== undefined ? { size: (d.size ?? l.size) as number } : {}),
      ...((d.mediaType ?? l.mediaType) ? { mediaType: (d.mediaType ?? l.mediaType) as string } : {}),
      ...(diffID ? { diffID } : {}),
      ...(createdAt ? { createdAt } : {}),
      ...(description ? { description } : {}),
    };
  };
  const chainOf = (top: number): CacheLayerBlob[] | undefined => {
    const out: CacheLayerBlob[] = [];
    const seen = new Set<number>();
    let i = top;
    for (;;) {
      if (seen.has(i)) throw bad("invalid looping layer");
      seen.add(i);
      if (i < 0 || i >= layers.length) throw bad(`invalid layer index ${i}`);
      const b = blobOf(i);
      if (!b) return undefined;
      out.unshift(b);
      const p = (layers[i] as (typeof layers)[number]).parent;
      if (p === -1) return out;
      i = p;
    }
  };
  const byKey = new Map<Digest, CacheChain[]>();
  const byContent = new Map<Digest, Digest[]>();
  const inputsOf = new Map<Digest, CacheInput[][]>();
  recordsRaw.forEach((r, idx) => {
    if (!isObj(r)) throw bad(`records[${idx}] is not an object`);
    const key = optDigest(r.digest, `records[${idx}].digest`);
    const chains: CacheChain[] = [];
    for (const [j, res] of (Array.isArray(r.layers) ? r.layers : []).entries()) {
      if (!isObj(res) || typeof res.layer !== "number") throw bad(`records[${idx}].layers[${j}] has no layer index`);
      const c = chainOf(res.layer);
      if (c) chains.push({ layers: c, ...(typeof res.createdAt === "string" ? { createdAt: res.createdAt } : {}) });
    }
    for (const [j, res] of (Array.isArray(r.chains) ? r.chains : []).entries()) {
      if (!isObj(res) || !Array.isArray(res.layers)) throw bad(`records[${idx}].chains[${j}] has no layers`);
      const c: CacheLayerBlob[] = [];
      let ok = true;
      for (const li of res.layers) {
        if (typeof li !== "number" || li < 0 || li >= layers.length) throw bad(`invalid layer index ${li}`);
        const b = blobOf(li);
        if (!b) {
          ok = false;
          break;
        }
        c.push(b);
      }
      if (ok) chains.push({ layers: c, ...(typeof res.createdAt === "string" ? { createdAt: res.createdAt } : {}) });
    }
    const inputs = Array.isArray(r.inputs) ? r.inputs : [];
    const links: CacheInput[][] = [];
    for (const [j, group] of inputs.entries()) {
      if (!Array.isArray(group) || group.length === 0) throw bad(`invalid empty input ${j} for record ${idx}`);
      const linked: CacheInput[] = [];
      for (const inp of group) {
        if (!isObj(inp) || typeof inp.link !== "number" || inp.link < 0 || inp.link >= recordsRaw.length) throw bad(`records[${idx}].inputs[${j}] has an invalid link`);
        const sel = typeof inp.selector === "string" && isSha256Digest(inp.selector) ? inp.selector : undefined;
        if (sel && key) byContent.set(sel, [...(byContent.get(sel) ?? []), key]);
        const target = recordsRaw[inp.link] as unknown;
        const linkKey = isObj(target) ? optDigest(target.digest, `records[${inp.link}].digest`) : undefined;
        if (linkKey) linked.push({ key: linkKey, ...(typeof inp.selector === "string" && inp.selector ? { selector: inp.selector } : {}) });
      }
      if (linked.length > 0) links.push(linked);
    }
    if (key && links.length > 0) inputsOf.set(key, [...(inputsOf.get(key) ?? []), ...links]);
    if (key) {
      chains.sort((a, b) => (b.createdAt ?? "").localeCompare(a.createdAt ?? ""));
      byKey.set(key, [...(byKey.get(key) ?? []), ...chains]);
    }
  });
  return { kind, byKey, byContent, inputs: inputsOf };
}

/** The early v0 `Items` format (Blobsum, CacheKey, ContentKey, DiffID, Parent). */
export function parseCacheItems(items: unknown[], provided: Map<Digest, Desc>): Parsed {
  const blobs = new Map<Digest, { diffID?: Digest; parent?: Digest }>();
  const keys: Array<{ key: Digest; blob?: Digest; content?: Digest }> = [];
  items.forEach((raw, i) => {
    if (!isObj(raw)) throw bad(`Items[${i}] is not an object`);
    const blob = optDigest(field(raw, "Blobsum"), `Items[${i}].Blobsum`);
    const key = optDigest(field(raw, "CacheKey"), `Items[${i}].CacheKey`);
    const content = optDigest(field(raw, "ContentKey"), `Items[${i}].ContentKey`);
    const diffID = optDigest(field(raw, "DiffID"), `Items[${i}].DiffID`);
    const parent = optDigest(field(raw, "Parent"), `Items[${i}].Parent`);
    if (blob) blobs.set(blob, { ...(diffID ? { diffID } : {}), ...(parent ? { parent } : {}) });
    if (key) keys.push({ key, ...(blob ? { blob } : {}), ...(content ? { content } : {}) });
  });
  const chainOf = (top: Digest): CacheLayerBlob[] => {
    const out: CacheLayerBlob[] = [];
    const seen = new Set<Digest>();
    let cur: Digest | undefined = top;
    while (cur) {
      if (seen.has(cur)) throw bad("invalid looping blob chain");
      seen.add(cur);
      const b = blobs.get(cur);
      if (!b) throw bad(`blob ${cur} not found in cache`);
      const d = provided.get(cur);
      out.unshift({
        digest: cur,
        ...(d?.size !== undefined ? { size: d.size } : {}),
        ...(d?.mediaType ? { mediaType: d.mediaType } : {}),
        ...(b.diffID ? { diffID: b.diffID } : {}),
      });
      cur = b.parent;
    }
    return out;
  };
  const byKey = new Map<Digest, CacheChain[]>();
  const byContent = new Map<Digest, Digest[]>();
  for (const k of keys) {
    byKey.set(k.key, k.blob ? [{ layers: chainOf(k.blob) }] : []);
    if (k.content) byContent.set(k.content, [...(byContent.get(k.content) ?? []), k.key]);
  }
  return { kind: "items", byKey, byContent };
}

/** BuildKit's inline cache of one image: `moby.buildkit.cache.v0` (base64 JSON records) over the manifest's layers. */
export function parseInlineCache(configBytes: Uint8Array, manifest: { layers: Desc[] }): Parsed | undefined {
  const img = parseJson(configBytes, "image config");
  if (!isObj(img)) throw bad("image config is not an object");
  const raw = img[INLINE_CACHE_FIELD];
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== "string") throw bad(`${INLINE_CACHE_FIELD} is not a base64 string`);
  const records = parseJson(new Uint8Array(Buffer.from(raw, "base64")), INLINE_CACHE_FIELD);
  if (!Array.isArray(records)) throw bad(`${INLINE_CACHE_FIELD} is not a list of records`);
  const rootfs = isObj(img.rootfs) ? img.rootfs : {};
  const diffIds = Array.isArray(rootfs.diff_ids) ? rootfs.diff_ids : [];
  if (diffIds.length !== manifest.layers.length) return undefined; // BuildKit: "invalid image with mismatching manifest and config"
  const history = Array.isArray(img.history) ? img.history.filter((h) => isObj(h) && h.empty_layer !== true) : [];
  const provided = new Map<Digest, Desc>();
  const layers = manifest.layers.map((l, i) => {
    const h = history[i] as Record<string, unknown> | undefined;
    const annotations: Record<string, string> = { ...(l.annotations ?? {}), [ANNOTATION_UNCOMPRESSED]: String(diffIds[i]) };
    if (typeof h?.created === "string") annotations["buildkit/createdat"] = h.created;
    if (typeof h?.created_by === "string") annotations["buildkit/description"] = h.created_by;
    provided.set(l.digest, { ...l, annotations });
    return { blob: l.digest, parent: i - 1 };
  });
  return parseCacheConfig({ layers, records }, provided, "inline");
}

/**
 * `fn` over `items`, at most `limit` at once. After a failure no new item
 * starts, and the first failure is thrown only once every started call has
 * ended: nothing keeps writing after the caller has moved on.
 */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i] as T);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  });
  const settled = await Promise.allSettled(workers);
  const failure = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure) throw failure.reason;
  return out;
}

async function resolveTop(fetcher: Fetcher, opts: ImportCacheOptions): Promise<BlobRef & { mediaType?: string }> {
  if (opts.manifest) return opts.manifest;
  if (!fetcher.index) throw new InvalidArgumentError("importCache: no manifest given and the source has no index.json", { code: CacheErrorCode.CACHE_NO_MANIFEST });
  const index = parseJson(await fetcher.index(), "index.json");
  if (!isObj(index) || !Array.isArray(index.manifests)) throw bad("index.json has no manifests");
  const entries = index.manifests.map((m, i) => desc(m, `index.json manifests[${i}]`));
  const tagOf = (d: Desc) => d.annotations?.["org.opencontainers.image.ref.name"];
  let pick: Desc | undefined;
  if (opts.tag !== undefined) pick = entries.find((d) => tagOf(d) === opts.tag);
  else if (entries.length === 1) pick = entries[0];
  else pick = entries.find((d) => tagOf(d) === "latest");
  if (!pick) {
    throw new NotFoundError(`cache source: no manifest ${opts.tag !== undefined ? `tagged ${JSON.stringify(opts.tag)}` : "(several entries, none tagged latest)"}`, { code: CacheErrorCode.CACHE_MANIFEST_NOT_FOUND });
  }
  return pick;
}

/**
 * Read a cache manifest from `source` (an OCI layout directory or tar path,
 * or any {@link Fetcher}) and return what answers probe / lookup /
 * contentMapping. Looked-up layers go into `target.layers`.
 */
export async function importCache(target: { layers: LayerStore }, source: Fetcher | string, opts: ImportCacheOptions = {}): Promise<CacheImport> {
  const fetcher = typeof source === "string" ? await openLayout(source) : source;
  const top = await resolveTop(fetcher, opts);
  const topBytes = await fetcher.readBytes(top, MAX_DOC);
  const doc = parseJson(topBytes, `manifest ${top.digest}`);
  if (!isObj(doc)) throw bad(`manifest ${top.digest} is not an object`);
  const provided = new Map<Digest, Desc>();
  let configDesc: Desc | undefined;
  let parsed: Parsed | undefined;
  if (detectType(doc, top.mediaType) === "index") {
    for (const [i, m] of ((doc.manifests as unknown[]) ?? []).entries()) {
      const d = desc(m, `manifests[${i}]`);
      if (d.mediaType === CACHE_CONFIG_MEDIA_TYPE) configDesc = d;
      else provided.set(d.digest, d);
    }
    if (!configDesc) {
      // An index of images: the inline caches of its manifests, combined.
      const combined: Parsed = { kind: "inline", byKey: new Map(), byContent: new Map() };
      for (const d of provided.values()) {
        if (d.mediaType && !MANIFEST_MEDIA_TYPES.has(d.mediaType)) continue;
        const m = parseJson(await fetcher.readBytes(d, MAX_DOC), `manifest ${d.digest}`);
        if (!isObj(m) || !isObj(m.config) || !Array.isArray(m.layers) || m.layers.length === 0) continue;
        const layersDesc = m.layers.map((l, i) => desc(l, `manifest ${d.digest} layers[${i}]`));
        const p = parseInlineCache(await fetcher.readBytes(desc(m.config, "config"), MAX_DOC), { layers: layersDesc });
        if (!p) continue;
        for (const [k, v] of p.byKey) combined.byKey.set(k, [...(combined.byKey.get(k) ?? []), ...v]);
        for (const [k, v] of p.byContent) combined.byContent.set(k, [...(combined.byContent.get(k) ?? []), ...v]);
      }
      parsed = combined;
    }
  } else {
    const cfg = desc(doc.config, "config");
    const layersDesc = (doc.layers as unknown[]).map((l, i) => desc(l, `layers[${i}]`));
    for (const l of layersDesc) provided.set(l.digest, l);
    if (cfg.mediaType === CACHE_CONFIG_MEDIA_TYPE) configDesc = cfg;
    else {
      parsed = parseInlineCache(await fetcher.readBytes(cfg, MAX_DOC), { layers: layersDesc });
      if (!parsed) throw new NotFoundError(`image ${cfg.digest} carries no inline cache (${INLINE_CACHE_FIELD})`, { code: CacheErrorCode.NO_INLINE_CACHE });
    }
  }
  if (!parsed) {
    const config = parseJson(await fetcher.readBytes(configDesc as Desc, MAX_DOC), "cache config");
    if (!isObj(config)) throw bad("cache config is not an object");
    const items = field(config, "Items");
    parsed = Array.isArray(items) ? parseCacheItems(items, provided) : parseCacheConfig(config, provided);
  }
  return new Importer(target.layers, fetcher, parsed, opts);
}

class Importer implements CacheImport {
  readonly kind: CacheImport["kind"];
  readonly #flights = new Map<string, Promise<LookupResult | undefined>>();

  constructor(
    private readonly layers: LayerStore,
    private readonly fetcher: Fetcher,
    private readonly parsed: Parsed,
    private readonly opts: ImportCacheOptions,
  ) {
    this.kind = parsed.kind;
  }

  keys(): Digest[] {
    return [...this.parsed.byKey.keys()];
  }

  chains(key: Digest | string): CacheChain[] {
    return this.parsed.byKey.get(key as Digest) ?? [];
  }

  probe(key: Digest | string): boolean {
    return this.chains(key).length > 0;
  }

  contentMapping(contentKey: Digest | string): Digest[] {
    return [...(this.parsed.byContent.get(contentKey as Digest) ?? [])];
  }

  inputs(key: Digest | string): CacheInput[][] {
    return (this.parsed.inputs?.get(key as Digest) ?? []).map((g) => g.map((i) => ({ ...i })));
  }

  lookup(key: Digest | string): Promise<LookupResult | undefined> {
    let f = this.#flights.get(key);
    if (!f) {
      f = this.#lookup(parseDigest(key)).finally(() => this.#flights.delete(key));
      this.#flights.set(key, f);
    }
    return f;
  }

  async #lookup(key: Digest): Promise<LookupResult | undefined> {
    const chain = this.chains(key)[0];
    if (!chain || chain.layers.length === 0) return undefined;
    const content = this.layers.content;
    const lease = await this.layers.lease();
    try {
      // Fetch every missing blob in parallel; each commit verifies size and digest.
      const fetch = async (l: CacheLayerBlob) => {
        const w = await content.writer({ lease });
        try {
          const stream = await this.fetcher.fetch(l);
          // a registry's socket gives 64 KiB at a time: one awaited write per MiB instead
          for await (const chunk of coalesceChunks(stream as AsyncIterable<Uint8Array>, 1 << 20)) await w.write(chunk);
          await w.commit(l.size, l.digest);
        } catch (err) {
          await w.abort();
          throw err;
        }
      };
      try {
        await mapLimit(chain.layers, this.opts.concurrency ?? 4, async (l) => {
          if (!(await content.has(l.digest))) await fetch(l);
        });
      } catch (err) {
        if (!this.opts.onFetchError || err instanceof DataIntegrityError) throw err;
        this.opts.onFetchError(key, err);
        return undefined;
      }
      // A blob the store had is not under our lease until registered: another process's GC
      // (a cache prune) may take it first. Then it is fetched again.
      const open = async (l: CacheLayerBlob) => {
        try {
          return await content.open(l.digest);
        } catch (err) {
          if (!hasCode(err, "ERR_BLOB_NOT_FOUND")) throw err;
          await fetch(l);
          return content.open(l.digest);
        }
      };
      // Register bottom-up (each verifies its DiffID).
      let parent: Digest | null = null;
      const diffIDs: Digest[] = [];
      for (const l of chain.layers) {
        const layer = await this.layers.register(await open(l), parent, {
          expectedDigest: l.digest,
          ...(l.size !== undefined ? { expectedSize: l.size } : {}),
          ...(l.diffID ? { expectedDiffID: l.diffID } : {}),
          ...(l.mediaType ? { mediaType: l.mediaType } : {}),
          lease,
        });
        parent = layer.chainID;
        diffIDs.push(layer.diffID);
      }
      const chainID = parent as Digest;
      const top = chain.layers[chain.layers.length - 1] as CacheLayerBlob;
      if (this.opts.holder) await this.layers.acquire(chainID, this.opts.holder);
      const ref = this.opts.manager ? await this.opts.manager.getByLayer(chainID, { description: top.description ?? "imported cache" }) : undefined;
      return { chainID, diffIDs, ...(ref ? { ref } : {}) };
    } finally {
      await lease.release();
    }
  }
}
