/**
 * `Store.fsck`: the layer store's checks (every blob re-hashed, every layer
 * decompressed), then images (config, manifest, layer holds, parents),
 * references, orphan holds and the OCI layout; with `repair`, what can be
 * fixed is fixed and a GC follows.
 * @module
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { chainId, type Digest } from "@berth/digest";
import { GARBAGE_KINDS, type GcResult, judgeProblems, type Layer, writeFileAtomic } from "@berth/layer-store";
import { parseImageConfig, parseManifest } from "@berth/oci";
import type { FsckOptions, FsckProblem, FsckReport } from "./api.js";
import { type Core, IMAGE_HOLDER_PREFIX } from "./core.js";
import { INDEX_FILE, OCI_LAYOUT_CONTENT, OCI_LAYOUT_FILE, readIndex, renderIndex } from "./layout.js";
import type { Op } from "./meta.js";
import { PINS_DIR, type PinStore } from "./pins.js";
import { removeStaleTemps } from "./temps.js";

/**
 * The image store's garbage kinds beside the layer store's: holds of an image
 * whose creation was interrupted before its record, a journal record torn by
 * a crash, an index.json a crash left behind the journal.
 */
const IMAGE_GARBAGE_KINDS: ReadonlySet<string> = new Set(["layer-hold-orphan", "journal-torn-tail", "index-stale"]);

/**
 * `image:<id>` holds on layers whose image does not exist (or names another
 * layer): what a create or delete killed midway left. Call under the images
 * lock (a create acquires its hold under it). @internal
 */
export async function orphanImageHolds(
  core: Core,
  layers: readonly Layer[],
  holdersOf: (chainID: Digest) => Promise<Iterable<string>> = (c) => core.layers.holders(c),
): Promise<Array<{ chainID: Digest; holder: string }>> {
  const out: Array<{ chainID: Digest; holder: string }> = [];
  for (const l of layers) {
    for (const h of await holdersOf(l.chainID)) {
      if (!h.startsWith(IMAGE_HOLDER_PREFIX)) continue;
      if (core.state.images.get(h.slice(IMAGE_HOLDER_PREFIX.length) as Digest)?.chainID === l.chainID) continue;
      out.push({ chainID: l.chainID, holder: h });
    }
  }
  return out;
}

/** What fsck needs of the store facade: its GC roots, its GC and its pin records. @internal */
export interface FsckHost {
  roots(): Promise<{ blobs: Set<Digest>; layers: Set<Digest> }>;
  gc(): Promise<GcResult>;
  readonly pins: PinStore;
}

/** Check (and with `repair`, fix) one store. @internal */
export async function fsck(store: FsckHost, core: Core, opts: FsckOptions): Promise<FsckReport> {
  const repair = opts.repair === true;
  const problems: FsckProblem[] = [];
  const checked = { blobs: 0, images: 0, references: 0, layers: 0 };
  const root = core.root;
  const blobPath = (d: string) => path.join(root, "blobs", "sha256", d.slice(7));
  const add = (p: Omit<FsckProblem, "repaired" | "garbage">, repaired = false) =>
    problems.push({ ...p, garbage: IMAGE_GARBAGE_KINDS.has(p.kind) || GARBAGE_KINDS.has(p.kind), repaired });

  // 1. Blobs and layers: the layer store's fsck re-hashes every blob and
  // decompresses every layer; blobs referenced by nothing (not even an image's
  // config or manifest) are orphans it removes with `repair`.
  // The roots are asked for again once the layer store has read the live leases
  // (under its lock with `repair`): a blob an upload committed and pinned while
  // the blobs were hashed is no orphan (the GC's order: see Store.gc).
  // An unreadable pin record (reported below) leaves orphans unjudged: what it keeps is unknown.
  const layerReport = await core.locked(async () => {
    const pinsReadable = await store.pins.blobs().then(
      () => true,
      () => false,
    );
    return core.layers.fsck(pinsReadable ? { repair, roots: async () => ({ blobs: (await store.roots()).blobs }) } : { repair });
  });
  checked.blobs = layerReport.checkedBlobs;
  for (const p of layerReport.problems) {
    const problem: FsckProblem = { kind: p.kind, path: p.path, message: p.message, garbage: p.garbage, repaired: p.repaired };
    if (p.digest !== undefined) problem.subject = p.digest;
    if (p.bytes !== undefined) problem.bytes = p.bytes;
    problems.push(problem);
  }

  // 2. Layers.
  const layerList = await core.layers.list().catch((err: Error) => {
    add({ kind: "layers-unreadable", path: path.join(root, "layers"), message: err.message });
    return [] as Layer[];
  });
  const layersById = new Map<Digest, Layer>();
  for (const l of layerList) {
    checked.layers++;
    layersById.set(l.chainID, l);
    if (!(await core.content.has(l.blob.digest))) {
      add({ kind: "layer-blob-missing", path: blobPath(l.blob.digest), subject: l.chainID, message: `layer ${l.chainID}: blob ${l.blob.digest} missing` });
    }
    if (l.parent !== null && !layersById.has(l.parent) && !(await core.layers.has(l.parent))) {
      add({ kind: "layer-parent-missing", path: path.join(root, "layers"), subject: l.chainID, message: `layer ${l.chainID}: parent ${l.parent} missing` });
    }
  }

  // Holders per layer, listed once (many images share a layer).
  const holderCache = new Map<Digest, Set<string>>();
  const holdersOf = async (chainID: Digest): Promise<Set<string>> => {
    let set = holderCache.get(chainID);
    if (!set) holderCache.set(chainID, (set = new Set(await core.layers.holders(chainID))));
    return set;
  };

  await core.locked(async () => {
    const state = core.state;
    const ops: Op[] = [];
    // 3. The journal itself.
    for (const p of core.journal.problems) {
      add({ kind: p.tornTail ? "journal-torn-tail" : "journal-corrupt-record", path: p.path, message: p.message }, repair);
    }
    // 4. Images: config, manifest, layers, holds, parents. An image whose
    // config or layer is gone cannot be used (moby skips such images when it
    // opens its store); repair removes it and its tags (load it again to heal).
    const unusable = async (id: Digest, chainID: Digest | null): Promise<boolean> => {
      if (!repair) return false;
      const tags = [...(state.refsById.get(id) ?? [])];
      ops.push(["d", id]);
      if (chainID !== null && layersById.has(chainID)) await core.layers.release(chainID, IMAGE_HOLDER_PREFIX + id).catch(() => {});
      if (tags.length) add({ kind: "reference-dangling", path: core.journal.journalPath, subject: id, message: `removed with unusable image ${id}: ${tags.join(", ")}` }, true);
      return true;
    };
    for (const rec of state.images.values()) {
      checked.images++;
      const id = rec.id;
      try {
        const cfg = parseImageConfig(await core.readVerified(id, "image config", { cached: false }), `image config ${id}`);
        const want = (cfg.rootfs.diff_ids ?? []).length ? chainId(cfg.rootfs.diff_ids) : null;
        if (want !== rec.chainID) {
          add({ kind: "image-chain-mismatch", path: blobPath(id), subject: id, message: `image ${id}: config ChainID ${want} but record says ${rec.chainID}` });
        }
      } catch (err) {
        add({ kind: "image-config-bad", path: blobPath(id), subject: id, message: (err as Error).message }, await unusable(id, rec.chainID));
        continue;
      }
      if (rec.chainID !== null && !layersById.has(rec.chainID)) {
        // The layers were listed before this lock: a layer an import registered since (and then
        // made this image on) is there now. Judged on the list alone, repair removed such an image
        // and its tags (found by the CLI's 8-process concurrency test).
        const now = await core.layers.get(rec.chainID).catch(() => undefined);
        if (now) layersById.set(now.chainID, now);
      }
      if (rec.chainID !== null && !layersById.has(rec.chainID)) {
        const message = `image ${id}: layer ${rec.chainID} missing from the layer store`;
        add({ kind: "image-layer-missing", path: path.join(root, "layers"), subject: id, message }, await unusable(id, rec.chainID));
        continue;
      }
      try {
        const m = parseManifest(await core.readVerified(rec.manifest, `manifest of image ${id}`, { cached: false }), `manifest ${rec.manifest}`);
        if (m.config.digest !== id) {
          add({ kind: "image-manifest-mismatch", path: blobPath(rec.manifest), subject: id, message: `manifest ${rec.manifest} names config ${m.config.digest}, not ${id}` });
        }
        for (const l of m.layers) {
          if (!(await core.content.has(l.digest))) {
            add({ kind: "image-layer-blob-missing", path: blobPath(l.digest), subject: id, message: `image ${id}: layer blob ${l.digest} missing` });
          }
        }
      } catch (err) {
        add({ kind: "image-manifest-bad", path: blobPath(rec.manifest), subject: id, message: (err as Error).message });
      }
      if (rec.chainID !== null && !(await holdersOf(rec.chainID)).has(IMAGE_HOLDER_PREFIX + id)) {
        let fixed = false;
        if (repair) {
          await core.layers.acquire(rec.chainID, IMAGE_HOLDER_PREFIX + id);
          fixed = true;
        }
        add({ kind: "image-hold-missing", path: path.join(root, "layers", "refs"), subject: id, message: `image ${id} does not hold its layer ${rec.chainID}` }, fixed);
      }
      if (rec.parent !== undefined && !state.images.has(rec.parent)) {
        if (repair) ops.push(["p", id, null]);
        add({ kind: "image-parent-missing", path: core.journal.journalPath, subject: id, message: `image ${id}: parent ${rec.parent} missing` }, repair);
      }
    }
    // 5. References.
    for (const [ref, id] of state.refs) {
      checked.references++;
      if (!state.images.has(id)) {
        if (repair) ops.push(["r", ref]);
        add({ kind: "reference-dangling", path: core.journal.journalPath, subject: ref, message: `reference ${ref} points at missing image ${id}` }, repair);
      }
    }
    // 6. Orphan holds: `image:<id>` holders of images that do not exist (a create or delete interrupted).
    for (const { chainID, holder } of await orphanImageHolds(core, layerList, holdersOf)) {
      let fixed = false;
      if (repair) {
        await core.layers.release(chainID, holder).catch(() => {});
        fixed = true;
      }
      add({ kind: "layer-hold-orphan", path: path.join(root, "layers", "refs"), subject: chainID, message: `layer ${chainID} held by ${holder}, which is no image` }, fixed);
    }
    // 7. Pin records: every blob a pin keeps is there. A pinned blob goes only after its pin
    // let it go, and GC (which removes blobs) waits for this lock: a missing one is damage.
    for (const name of await store.pins.list()) {
      const where = core.memory ? `memory:pins/${name}` : path.join(root, PINS_DIR, `${name}.json`);
      const pin = await store.pins.read(name).catch((err: Error) => {
        add({ kind: "pin-unreadable", path: where, message: `pin ${name}: ${err.message}` });
        return undefined;
      });
      for (const d of pin?.blobs ?? []) {
        if (!(await core.content.has(d))) add({ kind: "pin-blob-missing", path: where, subject: d, message: `pin ${name} keeps blob ${d}, which is missing` });
      }
    }
    if (ops.length) await core.append(ops);
    // 8. The OCI layout (filesystem stores).
    if (core.memory) return;
    const layout = await fsp.readFile(path.join(root, OCI_LAYOUT_FILE), "utf8").catch(() => undefined);
    if (layout === undefined || JSON.parse(layout || "{}").imageLayoutVersion === undefined) {
      if (repair) await writeFileAtomic(path.join(root, OCI_LAYOUT_FILE), OCI_LAYOUT_CONTENT);
      add({ kind: "layout-bad", path: path.join(root, OCI_LAYOUT_FILE), message: "oci-layout missing or invalid" }, repair);
    }
    const index = await readIndex(root);
    const want = renderIndex(state, index.foreign);
    const have = await fsp.readFile(path.join(root, INDEX_FILE), "utf8").catch(() => undefined);
    if (have !== want) {
      if (repair) await core.writeIndex();
      add({ kind: "index-stale", path: path.join(root, INDEX_FILE), message: index.error ? index.error.message : "index.json does not match the tags" }, repair);
    }
    for (const d of index.foreign) {
      if (!(await core.content.has(d.digest))) {
        add({ kind: "index-foreign-missing", path: path.join(root, INDEX_FILE), subject: d.digest, message: `index.json entry (not berth's) names missing blob ${d.digest}` });
      }
    }
    if (repair) {
      await core.journal.compact();
      await removeStaleTemps(core.journal.dir);
    }
  });

  let gc: GcResult | undefined;
  if (repair) {
    gc = await store.gc();
  }
  const report: FsckReport = { ...judgeProblems(problems), problems, checked };
  if (gc) report.gc = gc;
  return report;
}

