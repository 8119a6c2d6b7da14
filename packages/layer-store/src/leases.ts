import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import path from "node:path";
import { type Digest, digestFromHex, FailedPreconditionError, InvalidArgumentError } from "@berth/digest";
import { currentOwner, isOwnerAlive, mkdirp, type ProcessOwner, readdirIfExists, readIfExists, TEMP_SUFFIX, tempPathFor } from "./fsutil.js";
import { digestHex } from "@berth/digest";
import type { StorePaths } from "./paths.js";
import type { Lease } from "./types.js";
import { LayerStoreErrorCode } from "./errors.js";

const LEASE_ID_RE = /^[a-f0-9]{32}$/;

/** What `leases/<id>/owner.json` holds. */
export interface LeaseOwnerRecord extends ProcessOwner {
  id: string;
  created: string;
  /** Epoch milliseconds after which the lease protects nothing. */
  expiresAt?: number;
}

/** A lease of a filesystem store. */
export class FsLease implements Lease {
  readonly id: string;
  readonly #leases: FsLeases;
  constructor(leases: FsLeases, id: string) {
    this.#leases = leases;
    this.id = id;
  }
  release(): Promise<void> {
    return this.#leases.release(this.id);
  }
}

/** The live leases' protected resources. */
export interface LeaseRoots {
  blobs: Set<Digest>;
  layers: Set<Digest>;
}

/**
 * Leases on disk: `leases/<id>/owner.json` (pid + start time + optional
 * expiry) and one empty file per protected resource (`blob.<hex>`,
 * `layer.<hex>`); created and removed by renames, so a lease directory is
 * always complete. A lease protects only while its owner process runs and it
 * has not expired, so a crashed process never pins garbage forever. Leases
 * need no durability: after a crash their owner is dead anyway.
 */
export class FsLeases {
  readonly #paths: StorePaths;
  /**
   * The leases this object created and has not released, with their expiry:
   * {@link check} answers for those from memory. A lease of a live process is
   * only removed by its release (GC removes the leases of dead processes and
   * expired ones), so reading its owner file again tells nothing new — and a
   * load asked that ~20 times, on a thread pool busy with its writes.
   */
  readonly #held = new Map<string, number | undefined>();
  constructor(paths: StorePaths) {
    this.#paths = paths;
  }

  /**
   * Create a lease owned by this process. The directory is assembled under a
   * temporary name and renamed into place, so a lease directory always has its
   * owner file (a half-made one is a temp directory that cleanup removes).
   */
  async create(opts: { expiresInMs?: number } = {}): Promise<FsLease> {
    if (opts.expiresInMs !== undefined && !(opts.expiresInMs > 0)) {
      throw new InvalidArgumentError(`lease expiresInMs must be positive, got ${opts.expiresInMs}`);
    }
    const id = randomBytes(16).toString("hex");
    const dir = this.#paths.lease(id);
    const tmp = tempPathFor(dir);
    await mkdirp(tmp);
    const record: LeaseOwnerRecord = { id, ...currentOwner(), created: new Date().toISOString() };
    if (opts.expiresInMs !== undefined) record.expiresAt = Date.now() + opts.expiresInMs;
    await fsp.writeFile(path.join(tmp, "owner.json"), JSON.stringify(record));
    await fsp.rename(tmp, dir);
    this.#held.set(id, record.expiresAt);
    return new FsLease(this, id);
  }

  /** Validate a lease handed to an API; returns its directory. */
  async check(lease: Lease): Promise<string> {
    const id = lease?.id;
    if (typeof id !== "string" || !LEASE_ID_RE.test(id)) {
      throw new InvalidArgumentError(`invalid lease id ${JSON.stringify(id)}`, { code: LayerStoreErrorCode.INVALID_LEASE });
    }
    const dir = this.#paths.lease(id);
    if (this.#held.has(id)) {
      const expiresAt = this.#held.get(id);
      if (expiresAt === undefined || Date.now() < expiresAt) return dir;
    }
    const owner = await this.#readOwner(id);
    if (!owner || !this.#isLive(owner)) {
      throw new FailedPreconditionError(`lease ${id} is released or expired`, { code: LayerStoreErrorCode.LEASE_NOT_FOUND, details: { lease: id } });
    }
    return dir;
  }

  /** Record that `lease` protects a blob (call under the store lock). */
  async addBlob(lease: Lease, d: Digest): Promise<void> {
    const dir = await this.check(lease);
    await fsp.writeFile(path.join(dir, `blob.${digestHex(d)}`), "");
  }

  /** Record that `lease` protects a layer (call under the store lock). */
  async addLayer(lease: Lease, chainID: Digest): Promise<void> {
    const dir = await this.check(lease);
    await fsp.writeFile(path.join(dir, `layer.${digestHex(chainID)}`), "");
  }

  /** What a lease protects (nothing once released). */
  async resources(lease: Lease): Promise<LeaseRoots> {
    const out: LeaseRoots = { blobs: new Set(), layers: new Set() };
    if (!LEASE_ID_RE.test(String(lease?.id))) return out;
    for (const name of await readdirIfExists(this.#paths.lease(lease.id))) {
      const m = /^(blob|layer)\.([a-f0-9]{64})$/.exec(name);
      if (m) (m[1] === "blob" ? out.blobs : out.layers).add(digestFromHex(m[2]!));
    }
    return out;
  }

  /** Drop a lease (idempotent): renamed away atomically, then removed. */
  async release(id: string): Promise<void> {
    if (!LEASE_ID_RE.test(id)) return;
    this.#held.delete(id);
    const dir = this.#paths.lease(id);
    const tmp = tempPathFor(dir);
    try {
      await fsp.rename(dir, tmp);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    await fsp.rm(tmp, { recursive: true, force: true });
  }

  async #readOwner(id: string): Promise<LeaseOwnerRecord | undefined> {
    const buf = await readIfExists(path.join(this.#paths.lease(id), "owner.json"));
    if (!buf) return undefined;
    try {
      const rec = JSON.parse(buf.toString("utf8")) as LeaseOwnerRecord;
      if (typeof rec.pid !== "number" || typeof rec.start !== "string") return undefined;
      return rec;
    } catch {
      return undefined;
    }
  }

  #isLive(owner: LeaseOwnerRecord): boolean {
    if (owner.expiresAt !== undefined && Date.now() >= owner.expiresAt) return false;
    return isOwnerAlive(owner);
  }

  /**
   * Collect what live leases protect and list dead or expired leases (and
   * malformed directories); remove those when `sweep` is set. Call under the
   * store lock when sweeping.
   */
  async roots(sweep: boolean): Promise<LeaseRoots & { dead: string[] }> {
    const out: LeaseRoots & { dead: string[] } = { blobs: new Set(), layers: new Set(), dead: [] };
    for (const id of await readdirIfExists(this.#paths.leases)) {
      if (id.endsWith(TEMP_SUFFIX)) continue; // a lease being made or removed: cleanup's business
      const dir = this.#paths.lease(id);
      const owner = LEASE_ID_RE.test(id) ? await this.#readOwner(id) : undefined;
      if (!owner) {
        // Lease directories appear complete (renamed into place), so one without
        // a readable owner is garbage.
        if (sweep) await fsp.rm(dir, { recursive: true, force: true });
        out.dead.push(id);
        continue;
      }
      if (!this.#isLive(owner)) {
        if (sweep) await fsp.rm(dir, { recursive: true, force: true });
        out.dead.push(id);
        continue;
      }
      const held = await this.resources({ id, release: async () => {} });
      for (const d of held.blobs) out.blobs.add(d);
      for (const d of held.layers) out.layers.add(d);
    }
    return out;
  }
}
