/**
 * Build cache that survives `docker save` / `docker load` (moby#20380): the
 * classic cache needs the intermediate images, their parent links and the
 * "built locally" mark, and none of them travel in an archive. These
 * functions carry them in extra files under `berth-cache/v1/` — which
 * `docker load` ignores — and restore them on the other side.
 *
 * - `chain.json`: `{ "version": 1, "images": [{ "id", "parent", "builtLocally" }] }`,
 *   bottom (oldest ancestor) first, for every image of the saved images' chains;
 * - `configs/<hex>.json`: the config bytes of each ancestor that is not itself
 *   saved (its layers are a prefix of a saved image's, so no layer is added).
 * @module
 */
import { type Digest, digestHex, InvalidArgumentError, isSha256Digest, NotFoundError, sha256 } from "@berth/digest";
import { createReadStream } from "node:fs";
import { indexTar } from "./fetcher.js";
import { CacheErrorCode } from "./errors.js";

/** Directory of the extra archive entries. */
export const PARENT_CHAIN_DIR = "berth-cache/v1";
const CHAIN_FILE = `${PARENT_CHAIN_DIR}/chain.json`;
const MAX_ENTRY = 16 << 20;

/** An extra archive file. */
export interface ArchiveExtraFile {
  name: string;
  bytes: Uint8Array;
}

/** One image of the carried chain. */
export interface ChainEntry {
  id: Digest;
  parent: Digest | null;
  builtLocally: boolean;
}

/** The image-store roles these functions use (a berth `Store` has them). */
export interface ParentChainStore {
  images: {
    get(id: Digest | string): Promise<{ id: Digest; configBytes: Uint8Array; chainID: Digest | null }>;
    has(id: Digest | string): Promise<boolean>;
    getParent(id: Digest | string): Promise<Digest | undefined>;
    setParent(id: Digest | string, parent: Digest | string | null): Promise<void>;
    isBuiltLocally(id: Digest | string): Promise<boolean>;
    setBuiltLocally(id: Digest | string): Promise<void>;
    create(configBytes: Uint8Array): Promise<{ id: Digest }>;
  };
  references?: { resolve(ref: string): Promise<Digest> };
}

/** Result of {@link collectParentChain}. */
export interface ParentChainExport {
  /** Files to add to the archive (e.g. docker-archive's `save(..., { extraFiles })`). */
  files: ArchiveExtraFile[];
  /** Every image of the chains, bottom first. */
  chain: ChainEntry[];
  /** The ancestors whose configs are carried (not saved as images themselves). */
  carried: Digest[];
}

/**
 * Walk the parent chains of `images` (IDs or references) and describe them as
 * extra archive files.
 */
export async function collectParentChain(store: ParentChainStore, images: readonly string[]): Promise<ParentChainExport> {
  const saved = new Set<Digest>();
  for (const ref of images) {
    const id = isSha256Digest(ref) ? ref : store.references ? await store.references.resolve(ref) : (await store.images.get(ref)).id;
    saved.add(id);
  }
  const seen = new Map<Digest, ChainEntry>();
  const order: ChainEntry[] = [];
  const visit = async (id: Digest): Promise<void> => {
    if (seen.has(id)) return;
    const stack: Digest[] = [];
    let cur: Digest | undefined = id;
    while (cur !== undefined && !seen.has(cur) && !stack.includes(cur)) {
      stack.push(cur);
      cur = await store.images.getParent(cur);
    }
    for (const x of stack.reverse()) {
      const parent = (await store.images.getParent(x)) ?? null;
      const e: ChainEntry = { id: x, parent, builtLocally: await store.images.isBuiltLocally(x) };
      seen.set(x, e);
      order.push(e);
    }
  };
  for (const id of saved) await visit(id);
  const files: ArchiveExtraFile[] = [];
  const carried: Digest[] = [];
  for (const e of order) {
    if (saved.has(e.id)) continue;
    const img = await store.images.get(e.id);
    files.push({ name: `${PARENT_CHAIN_DIR}/configs/${digestHex(e.id)}.json`, bytes: img.configBytes });
    carried.push(e.id);
  }
  files.unshift({ name: CHAIN_FILE, bytes: new TextEncoder().encode(`${JSON.stringify({ version: 1, images: order })}\n`) });
  return { files, chain: order, carried };
}

/** True for the names {@link collectParentChain} writes (for an archive loader's extra-entry filter). */
export function isParentChainEntry(name: string): boolean {
  return name === CHAIN_FILE || (name.startsWith(`${PARENT_CHAIN_DIR}/configs/`) && /\/[0-9a-f]{64}\.json$/.test(name));
}

/**
 * Read the parent-chain files from an (uncompressed) archive file, touching
 * only their bytes (headers are indexed, layer contents skipped).
 */
export async function readParentChain(archiveFile: string): Promise<ArchiveExtraFile[]> {
  const entries = await indexTar(archiveFile);
  const out: ArchiveExtraFile[] = [];
  for (const [name, e] of entries) {
    if (!isParentChainEntry(name)) continue;
    if (e.size > MAX_ENTRY) throw new InvalidArgumentError(`${archiveFile}: ${name} is too large`, { code: CacheErrorCode.JSON_TOO_LARGE });
    const chunks: Buffer[] = [];
    if (e.size > 0) for await (const c of createReadStream(archiveFile, { start: e.offset, end: e.offset + e.size - 1 })) chunks.push(c as Buffer);
    out.push({ name, bytes: new Uint8Array(Buffer.concat(chunks)) });
  }
  return out;
}

/** Result of {@link restoreParentChain}. */
export interface RestoreResult {
  /** Ancestor images created from carried configs. */
  created: Digest[];
  /** Parent links set. */
  parents: number;
  /** Images marked built locally. */
  builtLocally: number;
  /** Entries not restored, with why (a missing image or layer chain, a bad config). */
  skipped: Array<{ id: string; reason: string }>;
}

function badChain(msg: string): InvalidArgumentError {
  return new InvalidArgumentError(`${CHAIN_FILE}: ${msg}`, { code: CacheErrorCode.INVALID_PARENT_CHAIN });
}

/**
 * Restore carried ancestors, parent links and built-locally marks into `store`
 * after the archive's images were loaded. Configs are verified against their
 * IDs; an image whose layers are not in the store is skipped (and so are links
 * to it), never half-created.
 */
export async function restoreParentChain(store: ParentChainStore, files: readonly ArchiveExtraFile[]): Promise<RestoreResult> {
  const chainFile = files.find((f) => f.name === CHAIN_FILE);
  if (!chainFile) throw new NotFoundError(`no ${CHAIN_FILE} among the archive's extra files`, { code: CacheErrorCode.NO_PARENT_CHAIN });
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(chainFile.bytes));
  } catch (err) {
    throw badChain(`not JSON (${(err as Error).message})`);
  }
  const d = doc as { version?: unknown; images?: unknown };
  if (typeof doc !== "object" || doc === null || d.version !== 1 || !Array.isArray(d.images)) throw badChain("expected version 1 with an images list");
  const entries: ChainEntry[] = d.images.map((x, i) => {
    const e = x as Record<string, unknown>;
    if (!isSha256Digest(e.id)) throw badChain(`images[${i}].id is not an image ID`);
    if (e.parent !== null && !isSha256Digest(e.parent)) throw badChain(`images[${i}].parent is not an image ID`);
    return { id: e.id, parent: e.parent as Digest | null, builtLocally: e.builtLocally === true };
  });
  const configs = new Map<string, Uint8Array>();
  for (const f of files) if (f.name !== CHAIN_FILE && isParentChainEntry(f.name)) configs.set(`sha256:${f.name.slice(-69, -5)}`, f.bytes);
  const res: RestoreResult = { created: [], parents: 0, builtLocally: 0, skipped: [] };
  const present = new Set<Digest>();
  for (const e of entries) {
    if (!(await store.images.has(e.id))) {
      const bytes = configs.get(e.id);
      if (!bytes) {
        res.skipped.push({ id: e.id, reason: "image not in the store and its config not carried" });
        continue;
      }
      if (sha256(bytes) !== e.id) {
        res.skipped.push({ id: e.id, reason: "carried config does not hash to its ID" });
        continue;
      }
      try {
        await store.images.create(bytes);
        res.created.push(e.id);
      } catch (err) {
        res.skipped.push({ id: e.id, reason: `create failed: ${(err as Error).message}` });
        continue;
      }
    }
    present.add(e.id);
    if (e.parent !== null && present.has(e.parent) && (await store.images.getParent(e.id)) !== e.parent) {
      await store.images.setParent(e.id, e.parent);
      res.parents++;
    }
    if (e.builtLocally && !(await store.images.isBuiltLocally(e.id))) {
      await store.images.setBuiltLocally(e.id);
      res.builtLocally++;
    }
  }
  return res;
}
