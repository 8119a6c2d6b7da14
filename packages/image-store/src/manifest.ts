/**
 * From a config to what the store records: validation against moby's rules,
 * the rootfs layer chain looked up in the layer store, the OCI manifest berth
 * writes for the image, and the journal's create record.
 * @module
 */
import { chainId, DataIntegrityError, type Digest, InvalidArgumentError, NotFoundError, sha256 } from "@berth/digest";
import type { Layer, LayerStore } from "@berth/layer-store";
import {
  type Descriptor,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_MANIFEST,
  nonEmptyLayerCount,
  type OciManifest,
  parseImageConfig,
} from "@berth/oci";
import type { Op } from "./meta.js";
import { ImageStoreErrorCode } from "./errors.js";

function platformString(config: { os?: unknown; architecture?: unknown; variant?: unknown }): string {
  const os = typeof config.os === "string" ? config.os : "";
  const arch = typeof config.architecture === "string" ? config.architecture : "";
  if (!os || !arch) return "";
  return typeof config.variant === "string" && config.variant ? `${os}/${arch}/${config.variant}` : `${os}/${arch}`;
}

function byteView(b: Uint8Array | string): Uint8Array {
  if (typeof b === "string") return new TextEncoder().encode(b);
  if (!(b instanceof Uint8Array)) {
    throw new InvalidArgumentError("image config must be bytes (Uint8Array) or a string", { code: ImageStoreErrorCode.INVALID_CONFIG });
  }
  return b;
}

/** The layer chain of a ChainID, bottom first. */
async function layerChain(layers: LayerStore, chainID: Digest): Promise<Layer[]> {
  const out: Layer[] = [];
  let cur: Digest | null = chainID;
  while (cur !== null) {
    const l: Layer = await layers.get(cur);
    out.push(l);
    cur = l.parent;
    if (out.length > 10_000) {
      throw new DataIntegrityError(`layer chain ${chainID} is longer than 10000 layers (cycle?)`, { code: ImageStoreErrorCode.LAYER_CHAIN });
    }
  }
  return out.reverse();
}

/** Build the OCI manifest of an image: config descriptor + the stored layer blobs. */
export function buildManifest(configDigest: Digest, configSize: number, chain: readonly Layer[]): Uint8Array {
  const manifest: OciManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: configDigest, size: configSize },
    layers: chain.map((l): Descriptor => ({ mediaType: l.blob.mediaType, digest: l.blob.digest, size: l.blob.size })),
  };
  return new TextEncoder().encode(JSON.stringify(manifest));
}

/** An image ready to be written: its config bytes, manifest and create record. @internal */
export interface PreparedImage {
  id: Digest;
  bytes: Uint8Array;
  manifest: Uint8Array;
  op: Op;
  chainID: Digest | null;
}

/**
 * Validate a config (more non-empty history entries than diff_ids is refused,
 * as moby does), find its rootfs chain in the layer store (`chains` caches
 * chains across one bulk create) and build its manifest and create record.
 * Nothing is written. @internal
 */
export async function prepareImage(
  layers: LayerStore,
  configBytes: Uint8Array | string,
  chains: Map<Digest, Layer[]>,
): Promise<PreparedImage> {
  const bytes = byteView(configBytes);
  const config = parseImageConfig(bytes, "image config");
  const diffIds = config.rootfs.diff_ids ?? [];
  const nonEmpty = nonEmptyLayerCount(config);
  if (nonEmpty > diffIds.length) {
    throw new InvalidArgumentError(
      `invalid image config: too many non-empty layers in History section (${nonEmpty} history entries make a layer, rootfs has ${diffIds.length} diff_ids)`,
      { code: ImageStoreErrorCode.INVALID_CONFIG, details: { nonEmpty, diffIds: diffIds.length } },
    );
  }
  const id = sha256(bytes);
  const chainID = diffIds.length > 0 ? chainId(diffIds)! : null;
  let chain: Layer[] = [];
  if (chainID !== null) {
    const cached = chains.get(chainID);
    if (cached) chain = cached;
    else {
      try {
        chain = await layerChain(layers, chainID);
      } catch (err) {
        if (err instanceof NotFoundError) {
          throw new NotFoundError(
            `image ${id}: its rootfs (${diffIds.length} layer${diffIds.length === 1 ? "" : "s"}, ChainID ${chainID}) is not in the layer store; register the layers first`,
            { code: ImageStoreErrorCode.LAYER_NOT_FOUND, cause: err, details: { id, chainID } },
          );
        }
        throw err;
      }
      chain.forEach((l, i) => {
        if (l.diffID !== diffIds[i]) {
          throw new DataIntegrityError(`layer ${l.chainID} has DiffID ${l.diffID}, config says ${diffIds[i]}`, {
            code: ImageStoreErrorCode.LAYER_CHAIN,
          });
        }
      });
      chains.set(chainID, chain);
    }
  }
  const manifest = buildManifest(id, bytes.length, chain);
  const manifestDigest = sha256(manifest);
  // dockerd's image size: the layers' file sizes (the tar size for layers recorded without it)
  const size = chain.reduce((n, l) => n + (l.contentSize ?? l.size), 0);
  const op: Op = ["c", id, chainID, manifestDigest, manifest.length, bytes.length, size, platformString(config), Date.now()];
  return { id, bytes, manifest, op, chainID };
}
