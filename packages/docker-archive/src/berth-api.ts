/**
 * The berth extension of the Engine API that makes a load incremental
 * against a berth server (`berth serve`), which dockerd does not have:
 *
 * 1. `GET /_ping` answers with the header {@link BERTH_API_HEADER} (`Berth-Api: 1`).
 * 2. `POST` {@link LAYER_LOOKUP_PATH} with `{"chainIDs": [...]}` (a JSON
 *    {@link LayerLookupRequest}) answers which of those layers the store has
 *    ({@link LayerLookupAnswer}) and protects them from GC under a lease for
 *    `expiresInSeconds`.
 * 3. `POST /images/load?berth-lease=<lease>` with a `manifest.json` archive
 *    that leaves those layers out: the server completes the images from its
 *    store (as dockerd's loader does with layers it has) and releases the lease.
 *
 * A stock docker CLI never sends the header or the parameter and gets the
 * plain endpoints.
 * @module
 */
import type { Digest } from "@berth/digest";

/** The `/_ping` response header naming the berth API version a server speaks. */
export const BERTH_API_HEADER = "Berth-Api";
/** The berth API version described here. */
export const BERTH_API_VERSION = 1;
/** Where a client asks which layers the server has. */
export const LAYER_LOOKUP_PATH = "/berth/v1/layers/lookup";
/** The `POST /images/load` query parameter naming a lookup's lease. */
export const LOAD_LEASE_PARAM = "berth-lease";
/** Most ChainIDs one lookup may name. */
export const MAX_LOOKUP_CHAINS = 4096;

/** The body of a lookup. */
export interface LayerLookupRequest {
  /** ChainIDs of the layers the client could leave out (at most {@link MAX_LOOKUP_CHAINS}). */
  chainIDs: Digest[];
}

/** The answer to a lookup. */
export interface LayerLookupAnswer {
  /** The asked ChainIDs the server has, in the order asked. */
  present: Digest[];
  /** The lease protecting them; name it in the load (`berth-lease=`). */
  lease: string;
  /** How long the lease protects them when no load names it. */
  expiresInSeconds: number;
}
