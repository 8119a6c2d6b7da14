/**
 * The store's half of the negotiated incremental load (the protocol is in
 * `@berth/docker-archive`'s `berth-api.ts`): a client asks which layers the
 * store has, those are protected under a lease that expires, and the load
 * that names the lease completes its images from them and releases it.
 * @module
 */
import { type Digest, FailedPreconditionError, InvalidArgumentError, isSha256Digest } from "@berth/digest";
import { type LayerLookupAnswer, MAX_LOOKUP_CHAINS } from "@berth/docker-archive";
import type { Store } from "@berth/image-store";
import { ImageServiceErrorCode } from "./errors.js";

/** How long a lookup's lease protects its layers when no load names it (ms). */
export const LOOKUP_LEASE_MS = 10 * 60_000;

type StoreLease = Awaited<ReturnType<Store["lease"]>>;

/**
 * Check a lookup's ChainIDs (what an HTTP face parsed from a stranger's body).
 * @throws InvalidArgumentError `ERR_INVALID_LOOKUP`
 */
export function checkLookup(chainIDs: unknown): Digest[] {
  if (!Array.isArray(chainIDs)) throw invalidLookup("chainIDs must be an array of sha256 digests");
  if (chainIDs.length > MAX_LOOKUP_CHAINS) throw invalidLookup(`chainIDs names ${chainIDs.length} layers; at most ${MAX_LOOKUP_CHAINS}`);
  const bad = chainIDs.findIndex((d) => typeof d !== "string" || !isSha256Digest(d));
  if (bad >= 0) throw invalidLookup(`chainIDs[${bad}] is not a sha256 digest`);
  return chainIDs as Digest[];
}

function invalidLookup(message: string): InvalidArgumentError {
  return new InvalidArgumentError(`layer lookup: ${message}`, { code: ImageServiceErrorCode.INVALID_LOOKUP });
}

/** The lookups of one image service: their leases by ID until a load uses them or they expire. */
export class LayerLookups {
  readonly #leases = new Map<string, { lease: StoreLease; timer: NodeJS.Timeout }>();

  constructor(private readonly store: Store) {}

  /** Which of `chainIDs` the store has, protected under a new lease for {@link LOOKUP_LEASE_MS}. */
  async lookup(chainIDs: unknown): Promise<LayerLookupAnswer> {
    const asked = checkLookup(chainIDs);
    const lease = await this.store.layers.lease({ expiresInMs: LOOKUP_LEASE_MS });
    const present: Digest[] = [];
    try {
      for (const c of new Set(asked)) if (await this.store.layers.leaseLayer(c, lease)) present.push(c);
    } catch (err) {
      await lease.release();
      throw err;
    }
    // the store forgets the lease when it expires; so does this map
    const timer = setTimeout(() => void this.release(lease.id), LOOKUP_LEASE_MS);
    timer.unref();
    this.#leases.set(lease.id, { lease, timer });
    return { present, lease: lease.id, expiresInSeconds: LOOKUP_LEASE_MS / 1000 };
  }

  /**
   * Check that a load may use the lookup `id` (the load then releases it with {@link release}).
   * @throws FailedPreconditionError `ERR_UNKNOWN_LOOKUP`
   */
  claim(id: string): void {
    if (!this.#leases.has(id))
      throw new FailedPreconditionError(`no layer lookup ${JSON.stringify(id)} (expired, used, or never made): look the layers up again`, {
        code: ImageServiceErrorCode.UNKNOWN_LOOKUP,
        details: { lease: id },
      });
  }

  /** Release a lookup's lease (idempotent). */
  async release(id: string): Promise<void> {
    const held = this.#leases.get(id);
    if (!held) return;
    this.#leases.delete(id);
    clearTimeout(held.timer);
    await held.lease.release();
  }

  /** Release every lease (the service is closing). */
  async close(): Promise<void> {
    for (const id of [...this.#leases.keys()]) await this.release(id);
  }
}
