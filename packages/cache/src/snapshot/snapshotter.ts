/**
 * A directory snapshotter in the spirit of containerd's "native" one
 * (`snapshots/native`), over `<root>/cache/snapshots/`:
 *
 * - `prepare(key, parent?)` makes a writable directory holding the parent's
 *   tree (a copy, see {@link copyTree}: on btrfs a snapshot of the parent's
 *   subvolume, so no inode is copied); `view(key, parent)` a read-only one
 *   (the committed parent's own directory: nothing is copied, so the caller
 *   must not write into it); `commit(name, key)` turns a prepared snapshot
 *   into a committed one, which children share; `remove`, `stat`, `usage`
 *   (bytes on disk and inodes, computed once for committed snapshots),
 *   `walk`.
 * - Records are JSON files written atomically (temp + fsync + rename) under
 *   one cross-process lock (`withLock(root, "snapshots")`); they survive
 *   restarts. A tree is built in `tmp/` (named by its owner process) and
 *   renamed into `fs/<id>` only when complete, just before its record is
 *   written, so a crash leaves either nothing or garbage that
 *   {@link Snapshotter.cleanup} removes: trees of dead owners in `tmp/`,
 *   trees no record names, a prepared record left beside its committed copy
 *   by a commit cut short. Every mutating call runs `cleanup` first.
 *
 * Layout: `records/<sha256(key)>.json`, `fs/<id>/` (the trees), `tmp/`.
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, readFile, rename, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "@berth/digest";
import { currentOwner, fsyncDir, isOwnerAlive, ownerToken, parseOwnerToken, withLock, writeFileAtomic } from "@berth/layer-store";
import { type CopyResult, copyTree } from "./clone.js";
import { createSubvolume, removeTree } from "./subvolume.js";
import { SnapshotErrorCode } from "../errors.js";

/** What a snapshot is: writable (`active`), read-only over a committed parent (`view`), or `committed`. */
export type SnapshotKind = "active" | "view" | "committed";

/** A snapshot's record. */
export interface SnapshotInfo {
  key: string;
  kind: SnapshotKind;
  /** Key of the committed snapshot it was prepared on. */
  parent?: string;
  /** Directory name under `fs/` (shared by a view and its parent). */
  id: string;
  /** ISO time of creation (of the commit, for committed snapshots). */
  created: string;
  /** Free-form labels (e.g. the ChainID a committed snapshot holds). */
  labels?: Record<string, string>;
  /** Disk usage, once computed (committed snapshots only: they do not change). */
  usage?: SnapshotUsage;
}

/** Disk usage of a snapshot's tree: bytes of the blocks it uses and inodes, each hard-linked inode once (containerd's `Usage`). */
export interface SnapshotUsage {
  size: number;
  inodes: number;
}

/** Options of {@link openSnapshotter}. */
export interface SnapshotterOptions {
  /** The store root; the snapshotter lives in `<root>/cache/snapshots`. */
  root: string;
  /** Creation times (default: the clock). */
  now?: () => Date;
}

/** What {@link Snapshotter.cleanup} removed. */
export interface CleanupResult {
  /** Paths (relative to the snapshotter directory) removed. */
  removed: string[];
}

/** Where the snapshotter keeps its files under a store root. */
export const SNAPSHOTS_DIR = join("cache", "snapshots");
const RECORD_VERSION = 1;
const MAX_KEY = 4096;

/** Open (creating its directories) the snapshotter of a store root. */
export async function openSnapshotter(opts: SnapshotterOptions): Promise<Snapshotter> {
  const s = new Snapshotter(opts);
  await Promise.all([mkdir(s.path("records"), { recursive: true }), mkdir(s.path("fs"), { recursive: true }), mkdir(s.path("tmp"), { recursive: true })]);
  return s;
}

/** See the module doc. Made by {@link openSnapshotter}. */
export class Snapshotter {
  /** Absolute path of the snapshotter's directory. */
  readonly dir: string;
  readonly #root: string;
  readonly #now: () => Date;
  /** What the last {@link prepare} copied (for measurements). */
  lastClone: CopyResult | undefined;

  constructor(opts: SnapshotterOptions) {
    this.#root = opts.root;
    this.dir = join(opts.root, SNAPSHOTS_DIR);
    this.#now = opts.now ?? (() => new Date());
  }

  /** A path under the snapshotter's directory. */
  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  #recordFile(key: string): string {
    return this.path("records", `${createHash("sha256").update(key).digest("hex")}.json`);
  }

  #lock<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(this.#root, "snapshots", fn);
  }

  /** The directory of a snapshot's tree. */
  treeOf(info: Pick<SnapshotInfo, "id">): string {
    return this.path("fs", info.id);
  }

  /** The record of `key`, or undefined. */
  async find(key: string): Promise<SnapshotInfo | undefined> {
    checkKey(key);
    let text: string;
    try {
      text = await readFile(this.#recordFile(key), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    const rec = parseRecord(text);
    return rec?.key === key ? rec : undefined;
  }

  /** The record of `key`. @throws NotFoundError `ERR_SNAPSHOT_NOT_FOUND` */
  async stat(key: string): Promise<SnapshotInfo> {
    const rec = await this.find(key);
    if (!rec) throw new NotFoundError(`snapshot ${JSON.stringify(key)}: not found`, { code: SnapshotErrorCode.SNAPSHOT_NOT_FOUND, details: { key } });
    return rec;
  }

  /** The directory of the snapshot `key` (writable for `active`, read-only by contract otherwise). */
  async mounts(key: string): Promise<string> {
    return this.treeOf(await this.stat(key));
  }

  async #committedParent(parent: string): Promise<SnapshotInfo> {
    const p = await this.stat(parent);
    if (p.kind !== "committed") {
      throw new FailedPreconditionError(`snapshot ${JSON.stringify(parent)} is ${p.kind}, not committed: nothing can be prepared on it`, {
        code: SnapshotErrorCode.SNAPSHOT_KIND,
        details: { key: parent },
      });
    }
    return p;
  }

  #exists(key: string): AlreadyExistsError {
    return new AlreadyExistsError(`snapshot ${JSON.stringify(key)} exists already`, { code: SnapshotErrorCode.SNAPSHOT_EXISTS, details: { key } });
  }

  /**
   * A new writable snapshot `key` holding the tree of the committed `parent`
   * (empty without one); returns its directory.
   * @throws AlreadyExistsError `ERR_SNAPSHOT_EXISTS`; NotFoundError `ERR_SNAPSHOT_NOT_FOUND` (parent); FailedPreconditionError `ERR_SNAPSHOT_KIND`
   */
  async prepare(key: string, parent?: string, opts: { labels?: Record<string, string> } = {}): Promise<string> {
    checkKey(key);
    await this.cleanup();
    if (await this.find(key)) throw this.#exists(key);
    const p = parent === undefined ? undefined : await this.#committedParent(parent);
    const tmp = this.path("tmp", `${ownerToken()}.${randomBytes(6).toString("hex")}`);
    try {
      if (p) this.lastClone = await copyTree(this.treeOf(p), tmp);
      else {
        // a subvolume on btrfs, so that children can be snapshots of it once it is committed
        if (!(await createSubvolume(tmp))) await mkdir(tmp, 0o755);
        this.lastClone = undefined;
      }
      return await this.#lock(async () => {
        if (await this.find(key)) throw this.#exists(key);
        if (p && (await this.find(p.key))?.id !== p.id) throw new NotFoundError(`snapshot ${JSON.stringify(p.key)} was removed while ${JSON.stringify(key)} was prepared on it`, { code: SnapshotErrorCode.SNAPSHOT_NOT_FOUND });
        const id = randomBytes(12).toString("hex");
        await rename(tmp, this.path("fs", id));
        await fsyncDir(this.path("fs"));
        await this.#write({ key, kind: "active", id, created: this.#now().toISOString(), ...(p ? { parent: p.key } : {}), ...(opts.labels ? { labels: opts.labels } : {}) });
        return this.path("fs", id);
      });
    } finally {
      await removeTree(tmp).catch(() => {});
    }
  }

  /**
   * A read-only snapshot `key` of the committed `parent`: its record names
   * the parent's own directory (nothing is copied). Writing into it would
   * change the parent: don't.
   */
  async view(key: string, parent: string): Promise<string> {
    checkKey(key);
    return this.#lock(async () => {
      if (await this.find(key)) throw this.#exists(key);
      const p = await this.#committedParent(parent);
      await this.#write({ key, kind: "view", id: p.id, parent: p.key, created: this.#now().toISOString() });
      return this.treeOf(p);
    });
  }

  /**
   * Make the prepared snapshot `key` the committed snapshot `name` (the tree
   * stays where it is; `key` is gone afterwards).
   * @throws NotFoundError; AlreadyExistsError (name); FailedPreconditionError `ERR_SNAPSHOT_KIND` when `key` is not active
   */
  async commit(name: string, key: string, opts: { labels?: Record<string, string> } = {}): Promise<SnapshotInfo> {
    checkKey(name);
    return this.#lock(async () => {
      const a = await this.stat(key);
      if (a.kind !== "active") {
        throw new FailedPreconditionError(`snapshot ${JSON.stringify(key)} is ${a.kind}: only a prepared snapshot can be committed`, {
          code: SnapshotErrorCode.SNAPSHOT_KIND,
          details: { key },
        });
      }
      if (await this.find(name)) throw this.#exists(name);
      const labels = { ...a.labels, ...opts.labels };
      const rec: SnapshotInfo = {
        key: name,
        kind: "committed",
        id: a.id,
        created: this.#now().toISOString(),
        ...(a.parent !== undefined ? { parent: a.parent } : {}),
        ...(Object.keys(labels).length ? { labels } : {}),
      };
      // the committed record first: a crash here leaves the prepared record beside it, which cleanup drops
      await this.#write(rec);
      await unlink(this.#recordFile(key));
      await fsyncDir(this.path("records"));
      return rec;
    });
  }

  /**
   * Remove a snapshot: its record, then its tree (unless a record still
   * names it). A committed snapshot others were prepared or viewed on is
   * refused (`ERR_SNAPSHOT_HAS_CHILDREN`), as containerd refuses it.
   */
  async remove(key: string): Promise<void> {
    checkKey(key);
    const trash = await this.#lock(async () => {
      const rec = await this.stat(key);
      const all = await this.#records();
      const children = all.filter((r) => r.parent === key);
      if (rec.kind === "committed" && children.length > 0) {
        throw new FailedPreconditionError(`snapshot ${JSON.stringify(key)} has ${children.length} child snapshot(s): ${children.map((c) => JSON.stringify(c.key)).join(", ")}`, {
          code: SnapshotErrorCode.SNAPSHOT_HAS_CHILDREN,
          details: { key, children: children.map((c) => c.key) },
        });
      }
      await unlink(this.#recordFile(key));
      await fsyncDir(this.path("records"));
      if (rec.kind === "view" || all.some((r) => r.key !== key && r.id === rec.id)) return undefined;
      const to = this.path("tmp", `${ownerToken()}.${randomBytes(6).toString("hex")}.removed`);
      await rename(this.treeOf(rec), to);
      return to;
    });
    if (trash) await removeTree(trash);
  }

  /** Every snapshot's record (in no particular order). */
  async walk(filter?: (info: SnapshotInfo) => boolean): Promise<SnapshotInfo[]> {
    const all = await this.#records();
    return filter ? all.filter(filter) : all;
  }

  /**
   * Disk usage of `key`'s tree: blocks in bytes and inodes (hard links once).
   * Computed once for a committed snapshot and kept in its record.
   */
  async usage(key: string): Promise<SnapshotUsage> {
    const rec = await this.stat(key);
    if (rec.usage) return rec.usage;
    const u = await diskUsage(this.treeOf(rec));
    if (rec.kind === "committed") {
      await this.#lock(async () => {
        const now = await this.find(key);
        if (now?.id === rec.id) await this.#write({ ...now, usage: u });
      });
    }
    return u;
  }

  /**
   * Remove what interrupted operations left: trees in `tmp/` whose owner
   * process is gone, trees in `fs/` no record names, a prepared record whose
   * tree a committed record took over, records whose tree is missing.
   */
  async cleanup(): Promise<CleanupResult> {
    const removed: string[] = [];
    const trash: string[] = [];
    await this.#lock(async () => {
      const all = await this.#records();
      const committedIds = new Set(all.filter((r) => r.kind === "committed").map((r) => r.id));
      for (const r of all) {
        const stale = r.kind === "active" && committedIds.has(r.id);
        const missing = !(await lstat(this.treeOf(r)).catch(() => undefined));
        if (stale || missing) {
          await unlink(this.#recordFile(r.key)).catch(() => {});
          removed.push(`records/${r.key}`);
        }
      }
      const ids = new Set((await this.#records()).map((r) => r.id));
      for (const id of await readdir(this.path("fs"))) {
        if (ids.has(id)) continue;
        const to = this.path("tmp", `${ownerToken()}.${randomBytes(6).toString("hex")}.removed`);
        await rename(this.path("fs", id), to);
        trash.push(to);
        removed.push(`fs/${id}`);
      }
      for (const name of await readdir(this.path("tmp"))) {
        const owner = parseOwnerToken(name.split(".")[0] ?? "");
        const mine = owner?.pid === currentOwner().pid && owner.start === currentOwner().start;
        if (mine && !name.endsWith(".removed")) continue;
        if (owner && !mine && isOwnerAlive(owner)) continue;
        if (!trash.includes(this.path("tmp", name))) {
          trash.push(this.path("tmp", name));
          removed.push(`tmp/${name}`);
        }
      }
      for (const name of await readdir(this.path("records"))) if (name.includes(".berth-tmp")) await rm(this.path("records", name), { force: true });
    });
    for (const t of trash) await removeTree(t);
    return { removed };
  }

  async #write(rec: SnapshotInfo): Promise<void> {
    await writeFileAtomic(this.#recordFile(rec.key), JSON.stringify({ version: RECORD_VERSION, ...rec }));
  }

  async #records(): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for (const name of await readdir(this.path("records"))) {
      if (!name.endsWith(".json")) continue;
      const rec = parseRecord(await readFile(this.path("records", name), "utf8").catch(() => ""));
      if (rec) out.push(rec);
    }
    return out;
  }
}

function checkKey(key: string): void {
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_KEY) {
    throw new InvalidArgumentError(`snapshot key must be 1 to ${MAX_KEY} characters`, { code: SnapshotErrorCode.SNAPSHOT_KEY });
  }
}

function parseRecord(text: string): SnapshotInfo | undefined {
  try {
    const v = JSON.parse(text) as SnapshotInfo & { version?: number };
    if (v.version !== RECORD_VERSION || typeof v.key !== "string" || typeof v.id !== "string" || !/^[0-9a-f]{24}$/.test(v.id)) return undefined;
    if (v.kind !== "active" && v.kind !== "view" && v.kind !== "committed") return undefined;
    const { version: _v, ...rec } = v;
    return rec;
  } catch {
    return undefined;
  }
}

/** Blocks (in bytes) and inodes under `dir`, each inode once. */
export async function diskUsage(dir: string): Promise<SnapshotUsage> {
  const seen = new Set<string>();
  let size = 0;
  const visit = async (p: string): Promise<void> => {
    const st = await lstat(p);
    const k = `${st.dev}:${st.ino}`;
    if (!seen.has(k)) {
      seen.add(k);
      size += st.blocks * 512;
    }
    if (st.isDirectory()) for (const name of await readdir(p)) await visit(`${p}/${name}`);
  };
  await visit(dir);
  return { size, inodes: seen.size };
}
