/**
 * Opening a store: `openStore` over a root directory (layer store, image
 * journal, OCI layout files) and `openMemoryStore` with nothing on disk.
 * @module
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { InvalidArgumentError } from "@berth/digest";
import { createMemoryLayerStore, fsyncDir, openLayerStore, writeFileAtomic } from "@berth/layer-store";
import { Core } from "./core.js";
import { FsStore } from "./facade.js";
import { INDEX_FILE, OCI_LAYOUT_CONTENT, OCI_LAYOUT_FILE, readIndex, renderIndex } from "./layout.js";
import { MemoryLog } from "./memlog.js";
import { Journal } from "./meta.js";
import { removeStaleTemps } from "./temps.js";
import { ImageStoreErrorCode } from "./errors.js";

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /** Store root directory (created when missing). */
  root: string;
}

/**
 * Open (creating when missing) the store at `root`: the layer store, the image
 * metadata, and the OCI layout files (`oci-layout`, `index.json`).
 *
 * @throws InvalidArgumentError `ERR_INVALID_ROOT` for an empty root
 * @throws DataIntegrityError `ERR_METADATA_CORRUPT` when the image snapshot is damaged beyond the torn-tail case
 */
export async function openStore(opts: OpenStoreOptions): Promise<FsStore> {
  if (!opts || typeof opts.root !== "string" || opts.root.length === 0) {
    throw new InvalidArgumentError("openStore: root must be a non-empty path", { code: ImageStoreErrorCode.INVALID_ROOT });
  }
  const root = path.resolve(opts.root);
  const layers = await openLayerStore({ root });
  const journal = new Journal(root, { writeFileAtomic, fsyncDir });
  await fsp.mkdir(journal.dir, { recursive: true });
  journal.load();
  const core = new Core(root, layers, journal);
  // The OCI layout files: create when missing, bring index.json in line with the journal.
  const layoutFile = path.join(root, OCI_LAYOUT_FILE);
  const layout = await fsp.readFile(layoutFile, "utf8").catch(() => undefined);
  const index = await readIndex(root);
  const needIndex = !index.exists || index.error !== undefined || renderIndex(core.state, index.foreign) !== (await fsp.readFile(path.join(root, INDEX_FILE), "utf8").catch(() => ""));
  if (layout === undefined || needIndex) {
    await core.locked(async () => {
      await removeStaleTemps(journal.dir);
      if ((await fsp.readFile(layoutFile, "utf8").catch(() => undefined)) === undefined) {
        await writeFileAtomic(layoutFile, OCI_LAYOUT_CONTENT);
      }
      await core.writeIndex();
    });
  }
  return new FsStore(core);
}

/**
 * An in-memory store (same API and semantics, nothing on disk) over
 * `@berth/layer-store`'s in-memory layer store: for tests of other packages and
 * for runtimes without a file system. Single process; `fsck` checks images,
 * references and the layer store; there is no `index.json`.
 */
export async function openMemoryStore(): Promise<FsStore> {
  const core = new Core("memory:", createMemoryLayerStore(), new MemoryLog(), true);
  return new FsStore(core);
}
