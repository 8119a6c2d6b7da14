import { promises as fsp } from "node:fs";
import path from "node:path";
import { CorruptDataError, type Digest, digestFromHex, digestStream, layerDigests } from "@berth/digest";
import { cleanupStale } from "./cleanup.js";
import { TarCheck } from "./tarcheck.js";
import { fsyncDir, readdirIfExists, TEMP_SUFFIX } from "./fsutil.js";
import type { FsLeases } from "./leases.js";
import { holderFromFileName } from "./holders.js";
import { isHex64, type StorePaths } from "./paths.js";
import { type FsckOptions, type FsckProblem, type FsckReport, GARBAGE_KINDS, judgeProblems, type Layer, resolveRoots } from "./types.js";

interface BlobCheck {
  size: number;
  ok: boolean;
  diffID?: Digest;
  uncompressedSize?: number;
  contentSize?: number;
  /** Why the uncompressed content is not a tar (only layers must be). */
  notTar?: string;
}

/** Results of blob checks keyed by digest, inode, size and mtime (blobs are immutable). @internal */
export type BlobCheckCache = Map<string, BlobCheck>;

async function checkBlob(file: string, d: Digest, verify: boolean, cache?: BlobCheckCache): Promise<BlobCheck> {
  const fh = await fsp.open(file, "r");
  try {
    const st = await fh.stat();
    if (!verify) return { size: st.size, ok: true };
    const key = `${d}:${st.ino}:${st.size}:${st.mtimeMs}`;
    const hit = cache?.get(key);
    if (hit) return hit;
    const read = () => fh.createReadStream({ start: 0, autoClose: false });
    let result: BlobCheck;
    try {
      const tar = new TarCheck();
      const r = await layerDigests(read(), { onUncompressed: (c) => tar.push(c) });
      result = { size: st.size, ok: r.digest === d, diffID: r.diffID, uncompressedSize: r.uncompressedSize, contentSize: tar.contentSize };
      const notTar = tar.finish();
      if (notTar) result.notTar = notTar.message;
    } catch (err) {
      if (!(err instanceof CorruptDataError)) throw err;
      // Looks compressed but is not a valid stream: fine for a non-layer blob, so judge the digest alone.
      const r = await digestStream(read());
      result = { size: st.size, ok: r.digest === d };
    }
    cache?.set(key, result);
    return result;
  } finally {
    await fh.close();
  }
}

/**
 * Verify the layer part of a store: every blob's digest and size, every layer
 * record (blob present, DiffID and size of the uncompressed content, parent
 * present, ChainID consistent), holder references, leases, ingests and
 * temporary files. With `repair`, broken records, corrupt blobs, orphan
 * references, dead leases and stale files are removed (and orphan blobs when
 * `keepBlobs` says what else is referenced).
 * @internal used by FsLayerStore.fsck
 */
export async function fsckLayers(
  paths: StorePaths,
  leases: FsLeases,
  readRecord: (id: Digest) => Promise<Layer | undefined>,
  opts: FsckOptions,
  cache?: BlobCheckCache,
): Promise<FsckReport> {
  const repair = opts.repair === true;
  const verify = opts.verifyContent !== false;
  const roots = opts.keepBlobs === undefined ? undefined : resolveRoots([opts.keepBlobs, "keepBlobs entry"]);
  const problems: FsckProblem[] = [];
  const report = (p: Omit<FsckProblem, "repaired" | "garbage">, repaired: boolean) => problems.push({ ...p, garbage: GARBAGE_KINDS.has(p.kind), repaired });

  // Stale ingests and temporary files.
  for (const f of await cleanupStale(paths, { dryRun: !repair })) {
    report(
      {
        kind: f.kind === "ingest" ? "stale-ingest" : "stale-temp",
        path: f.path,
        message: `${f.kind === "ingest" ? "ingest" : "temporary file"} left by a process that is gone`,
        ...(f.bytes !== undefined ? { bytes: f.bytes } : {}),
      },
      repair,
    );
  }

  // Blobs.
  const blobs = new Map<Digest, BlobCheck>();
  let blobsRemoved = false;
  for (const name of (await readdirIfExists(paths.blobs)).sort()) {
    const file = path.join(paths.blobs, name);
    if (!isHex64(name)) {
      if (name.endsWith(TEMP_SUFFIX)) continue; // judged above
      report({ kind: "unknown-file", path: file, message: `unexpected file in ${paths.blobs}` }, false);
      continue;
    }
    const d = digestFromHex(name);
    let c: BlobCheck;
    try {
      c = await checkBlob(file, d, verify, cache);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue; // removed meanwhile
      throw err;
    }
    if (!c.ok) {
      report({ kind: "blob-corrupt", path: file, digest: d, message: `blob ${d} does not match its digest` }, repair);
      if (repair) {
        await fsp.rm(file, { force: true });
        blobsRemoved = true;
      }
      continue;
    }
    blobs.set(d, c);
  }

  // Layer records.
  const records = new Map<Digest, Layer>();
  const broken = new Map<Digest, string>(); // chainID -> record path
  for (const name of (await readdirIfExists(paths.layerRecords)).sort()) {
    const file = path.join(paths.layerRecords, name);
    const m = /^([a-f0-9]{64})\.json$/.exec(name);
    if (!m) {
      if (!name.endsWith(TEMP_SUFFIX)) report({ kind: "unknown-file", path: file, message: `unexpected file in ${paths.layerRecords}` }, false);
      continue;
    }
    const id = digestFromHex(m[1]!);
    let layer: Layer | undefined;
    try {
      layer = await readRecord(id);
    } catch (err) {
      report({ kind: "record-corrupt", path: file, digest: id, message: (err as Error).message }, repair);
      broken.set(id, file);
      continue;
    }
    if (!layer) continue;
    records.set(id, layer);
  }
  for (const [id, layer] of records) {
    const file = paths.layerRecord(id);
    let b = blobs.get(layer.blob.digest);
    if (!b && !repair) {
      // Without the lock, a writer may have committed the blob after we listed blobs.
      b = await checkBlob(paths.blob(layer.blob.digest), layer.blob.digest, verify, cache).catch(() => undefined);
      if (b && !b.ok) b = undefined;
      if (b) blobs.set(layer.blob.digest, b);
    }
    if (!b) {
      report({ kind: "record-blob-missing", path: file, digest: id, message: `layer ${id}: blob ${layer.blob.digest} is missing` }, repair);
      broken.set(id, file);
    } else if (b.size !== layer.blob.size) {
      report(
        { kind: "record-blob-mismatch", path: file, digest: id, message: `layer ${id}: blob is ${b.size} bytes, record says ${layer.blob.size}` },
        repair,
      );
      broken.set(id, file);
    } else if (
      verify &&
      (b.diffID !== layer.diffID ||
        b.uncompressedSize !== layer.size ||
        (layer.contentSize !== undefined && b.notTar === undefined && b.contentSize !== layer.contentSize))
    ) {
      report(
        {
          kind: "record-diffid-mismatch",
          path: file,
          digest: id,
          message: `layer ${id}: blob decompresses to ${b.diffID ?? "invalid data"} (${b.uncompressedSize ?? "?"} bytes, ${b.contentSize ?? "?"} in files), record says ${layer.diffID} (${layer.size} bytes, ${layer.contentSize ?? "?"} in files)`,
        },
        repair,
      );
      broken.set(id, file);
    } else if (verify && b.notTar !== undefined) {
      report({ kind: "record-not-tar", path: file, digest: id, message: `layer ${id}: ${b.notTar}` }, repair);
      broken.set(id, file);
    }
  }
  // Parents: a record whose parent is missing or broken is broken too (to a fixpoint).
  for (let changed = true; changed; ) {
    changed = false;
    for (const [id, layer] of records) {
      if (broken.has(id) || layer.parent === null) continue;
      if (records.has(layer.parent) && !broken.has(layer.parent)) continue;
      const file = paths.layerRecord(id);
      const why = records.has(layer.parent) ? "is broken" : "is missing";
      report({ kind: "record-parent-missing", path: file, digest: id, message: `layer ${id}: parent ${layer.parent} ${why}` }, repair);
      broken.set(id, file);
      changed = true;
    }
  }
  if (repair && broken.size) {
    // Children first is unnecessary here: every broken record goes, and a crash
    // midway leaves records that the next fsck still reports.
    for (const [id, file] of broken) {
      await fsp.rm(file, { force: true });
      records.delete(id);
    }
    await fsyncDir(paths.layerRecords);
  }

  // Holder references of layers that do not exist.
  for (const name of (await readdirIfExists(paths.layerRefs)).sort()) {
    const dir = path.join(paths.layerRefs, name);
    if (!isHex64(name)) {
      report({ kind: "unknown-file", path: dir, message: `unexpected entry in ${paths.layerRefs}` }, false);
      continue;
    }
    const id = digestFromHex(name);
    const holders = (await readdirIfExists(dir)).filter((n) => holderFromFileName(n) !== undefined);
    if (!records.has(id) && !broken.has(id)) {
      report({ kind: "ref-orphan", path: dir, digest: id, message: `holders ${holders.map((h) => holderFromFileName(h)).join(", ")} of missing layer ${id}` }, repair);
      if (repair) await fsp.rm(dir, { recursive: true, force: true });
    } else if (repair && broken.has(id)) {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }

  // Leases.
  const leaseRoots = await leases.roots(repair);
  for (const id of leaseRoots.dead) {
    report({ kind: "lease-dead", path: paths.lease(id), message: `lease ${id} belongs to a process that is gone or has expired` }, repair);
  }

  // Orphan blobs, only when the caller told us what else is referenced (its
  // late roots asked for now, after the leases: see FsckOptions.roots).
  const late = opts.roots ? resolveRoots([(await opts.roots()).blobs, "roots().blobs entry"]) : undefined;
  if (roots || late) {
    const live = new Set<Digest>([...(roots ?? []), ...(late ?? []), ...leaseRoots.blobs]);
    for (const l of records.values()) live.add(l.blob.digest);
    for (const d of blobs.keys()) {
      if (live.has(d)) continue;
      const file = paths.blob(d);
      report({ kind: "blob-orphan", path: file, digest: d, message: `blob ${d} is referenced by nothing`, bytes: blobs.get(d)!.size }, repair);
      if (repair) {
        await fsp.rm(file, { force: true });
        blobsRemoved = true;
      }
    }
  }
  if (blobsRemoved) await fsyncDir(paths.blobs);

  return { ...judgeProblems(problems), problems, checkedBlobs: blobs.size, checkedLayers: records.size + broken.size };
}
