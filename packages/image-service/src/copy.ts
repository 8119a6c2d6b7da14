/**
 * `berth copy SRC DST`: one image between any two of a registry
 * (`docker://REF`), an OCI layout directory (`oci:DIR[:REF]`), an OCI
 * archive (`oci-archive:FILE[:REF]`, written whole when the copy is) and the
 * store (`berth:NAME`), as skopeo's `copy` and crane's `copy` do. Registries and
 * layouts are `@berth/registry`'s ends, copied byte for byte (a whole index
 * with `allPlatforms`, else the one manifest for the platform, as skopeo does
 * by default); the store is read through its own manifest and written
 * through the pull's transaction, so what a copy into the store leaves is
 * exactly what a pull would.
 * @module
 */
import { type Digest, InvalidArgumentError } from "@berth/digest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, type Store } from "@berth/image-store";
import { loadImages, saveImages } from "./archive.js";
import { formatPlatform, hostPlatform, MEDIA_TYPE_OCI_MANIFEST, parsePlatform, parseReference } from "@berth/oci";
import {
  copyImage,
  type CopyResult,
  type ImageLocation,
  openDestination,
  openSource,
  parseImageLocation,
  REGISTRY_ERROR_CODES,
} from "@berth/registry";
import { type PushCompression, sendImage } from "./push.js";
import { type RegistryEvent, type RegistryOptions, resolveSourceImage, storeImage, storeSource, type TransferredBlob, transferred, withClient } from "./registry.js";

/** Where a copy reads or writes: a registry, OCI layout or archive location, an image of the store, or a `docker save` archive. */
export type CopyLocation = ImageLocation | { transport: "berth"; name: string } | { transport: "docker-archive"; file: string; ref?: string };

/** Options of {@link copyBetween}. */
export interface CopyBetweenOptions extends Omit<RegistryOptions, "onProgress"> {
  /** `os/arch[/variant]` to take out of a multi-platform image. Default: this machine's. */
  platform?: string;
  /** Copy a multi-platform index whole, byte for byte (not into the store, which holds one image per name). */
  allPlatforms?: boolean;
  /**
   * From the store to a registry: how layers are sent, as {@link pushImage}
   * sends them (default gzip, as skopeo compresses for registries). Other
   * copies keep every blob as it is.
   */
  compression?: PushCompression;
  onProgress?: CopyProgress;
}

/** Progress of a copy: {@link copyImage}'s events (a copy from the store to a registry reports `resolved` first, as a push). */
export type CopyProgress = (event: RegistryEvent) => void;

/** What {@link copyBetween} did. */
export interface CopyBetweenResult {
  /** The two ends, as skopeo names them (`docker://…`, `oci:…`, `berth:…`). */
  source: string;
  destination: string;
  /** The root written: the index with `allPlatforms`, else the manifest. */
  digest: Digest;
  mediaType: string;
  size: number;
  /** The platform chosen from an index. */
  platform?: string;
  /** The image ID, when the store is one end. */
  id?: Digest;
  blobs: TransferredBlob[];
  manifestsWritten: number;
  bytesTransferred: number;
}

function invalid(message: string): InvalidArgumentError {
  return new InvalidArgumentError(message, { code: REGISTRY_ERROR_CODES.INVALID_LOCATION });
}

/**
 * Parse `berth:NAME`, `docker://REF`, `oci:DIR[:REF]` or `oci-archive:FILE[:REF]`.
 * @throws InvalidArgumentError `ERR_INVALID_LOCATION`
 */
export function parseCopyLocation(s: string): CopyLocation {
  if (s.startsWith("docker-archive:")) {
    // skopeo's spelling: the path may not contain `:`; what follows names an image (`repo:tag`)
    const rest = s.slice("docker-archive:".length);
    const i = rest.indexOf(":");
    const file = i < 0 ? rest : rest.slice(0, i);
    if (file === "") throw invalid(`invalid image location ${JSON.stringify(s)}: no file`);
    return i < 0 ? { transport: "docker-archive", file } : { transport: "docker-archive", file, ref: rest.slice(i + 1) };
  }
  if (!s.startsWith("berth:")) return parseImageLocation(s);
  const name = s.slice("berth:".length);
  if (name === "") throw invalid(`invalid image location ${JSON.stringify(s)}: no image name`);
  return { transport: "berth", name };
}

/** The reference a copy into the store tags. @throws InvalidArgumentError `ERR_INVALID_LOCATION` for a digest */
function storeName(name: string): ReturnType<typeof parseReference> {
  const ref = parseReference(name);
  if (ref.digest !== undefined) throw invalid(`cannot name an image in the store by digest (${name}): give a tag`);
  return ref;
}

/** A location as skopeo prints it. */
/** A location as skopeo names it (`docker://…`, `oci:DIR[:REF]`, `berth:NAME`, …). */
export function describeLocation(loc: CopyLocation): string {
  if (loc.transport === "berth") return `berth:${loc.name}`;
  if (loc.transport === "docker") return `docker://${loc.reference.string}`;
  if (loc.transport === "docker-archive") return `docker-archive:${loc.file}${loc.ref !== undefined ? `:${loc.ref}` : ""}`;
  return `${loc.transport}:${loc.transport === "oci" ? loc.dir : loc.file}${loc.refName !== undefined ? `:${loc.refName}` : ""}`;
}

/**
 * Copy the image at `from` to `to` (strings as {@link parseCopyLocation}
 * reads them). Into the store, the image is stored and tagged as a pull
 * stores it (one platform; nothing visible until it is whole); out of the
 * store, its OCI manifest is copied with the blobs as stored.
 * @throws InvalidArgumentError `ERR_INVALID_LOCATION` (a bad location, a
 *   store-to-store copy, a digest as the store name, `allPlatforms` into the
 *   store), `ERR_INVALID_PLATFORM`; the errors of {@link pullImage} and the
 *   registry's
 */
export async function copyBetween(store: Store, from: string | CopyLocation, to: string | CopyLocation, opts: CopyBetweenOptions = {}): Promise<CopyBetweenResult> {
  const src = typeof from === "string" ? parseCopyLocation(from) : from;
  const dst = typeof to === "string" ? parseCopyLocation(to) : to;
  if (src.transport === "berth" && dst.transport === "berth") throw invalid("a copy within the store is a tag: use `berth tag`");
  if (opts.allPlatforms && opts.platform !== undefined) throw invalid("give a platform or all platforms, not both");
  if (src.transport === "docker-archive" || dst.transport === "docker-archive") return viaArchive(store, src, dst, opts);
  const ends = { source: describeLocation(src), destination: describeLocation(dst) };
  const call = {
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  };
  return withClient(opts, async (client) => {
    if (dst.transport === "berth") {
      if (opts.allPlatforms) throw invalid("the store holds one platform's image per name: copy all platforms to a registry or an OCI layout");
      const ref = storeName(dst.name);
      const source = await openSource(src as ImageLocation, client);
      try {
        const image = await resolveSourceImage(store, source, ends.source, { ...(opts.platform !== undefined ? { platform: opts.platform } : {}), ...call });
        const copied = await storeImage(store, source, image, [ref.string], { ...call, resumable: src.transport === "docker" });
        return result(ends, copied, image.platform, copied.id);
      } finally {
        await source.close?.();
      }
    }
    let id: Digest | undefined;
    if (src.transport === "berth") {
      id = await store.references.resolve(src.name);
      // to a registry, as a push sends it (compressed; the blob-info cache's mounts and HEADs)
      if (dst.transport === "docker") {
        const sent = await sendImage(store, id, dst.reference, { ...opts, client });
        return { ...ends, id, ...sent };
      }
    }
    const platform = opts.allPlatforms ? undefined : opts.platform !== undefined ? parsePlatform(opts.platform) : hostPlatform();
    const source = id !== undefined ? storeSource(store, id, ends.source) : await openSource(src as ImageLocation, client);
    try {
      const { destination, tag } = await openDestination(dst, client);
      let ok = false;
      try {
        const copied = await copyImage(source, destination, { ...(tag !== undefined ? { tag } : {}), ...(platform ? { platform } : {}), ...call });
        ok = true;
        const chosen = copied.selected?.platform;
        return result(ends, copied, chosen ? formatPlatform(chosen) : undefined, id);
      } finally {
        // an archive is written now, whole, or not at all
        await destination.close?.(ok);
      }
    } finally {
      await source.close?.();
    }
  });
}

function result(ends: { source: string; destination: string }, copied: CopyResult, platform: string | undefined, id: Digest | undefined): CopyBetweenResult {
  return {
    ...ends,
    digest: copied.digest,
    mediaType: copied.mediaType,
    size: copied.size,
    ...(platform ? { platform } : {}),
    ...(id ? { id } : {}),
    blobs: copied.blobs.map(transferred),
    manifestsWritten: copied.manifestsWritten,
    bytesTransferred: copied.bytesTransferred,
  };
}

/**
 * A copy with a `docker save` archive at one end, through a temporary store
 * (as skopeo goes through a temporary directory): the archive is loaded into
 * it and the image copied on from there, or the image is brought into it
 * and saved from it (the file written whole, or not at all). The caller's
 * store sees nothing but what the copy writes there. The archive's image is
 * the one `ref` names, else its only one; written, it is tagged `ref` (else
 * the source's name, when it has one).
 */
async function viaArchive(store: Store, src: CopyLocation, dst: CopyLocation, opts: CopyBetweenOptions): Promise<CopyBetweenResult> {
  const ends = { source: describeLocation(src), destination: describeLocation(dst) };
  const call = opts.signal ? { signal: opts.signal } : {};
  const dir = await mkdtemp(join(tmpdir(), "berth-docker-archive-"));
  const temp = await openStore({ root: dir });
  try {
    // the image as a store and an ID
    let from: Store = temp;
    let id: Digest;
    if (src.transport === "docker-archive") {
      const loaded = await loadImages(temp, src.file, call);
      const only = loaded.images.length === 1 ? loaded.images[0]!.id : undefined;
      const named = src.ref !== undefined ? await temp.references.resolve(src.ref) : only;
      if (named === undefined) throw invalid(`${src.file} holds ${loaded.images.length} images: name one (docker-archive:${src.file}:NAME)`);
      id = named;
    } else if (src.transport === "berth") {
      from = store;
      id = await store.references.resolve(src.name);
    } else {
      id = (await copyBetween(temp, src, { transport: "berth", name: "berth-copy/source:latest" }, opts)).id!;
    }
    if (dst.transport !== "docker-archive") {
      if (dst.transport !== "berth") return { ...(await copyBetween(from, { transport: "berth", name: id }, dst, opts)), source: ends.source };
      // into the caller's store from the temporary one: a pull from a store source
      const ref = storeName(dst.name);
      const source = storeSource(from, id, ends.source);
      const image = await resolveSourceImage(store, source, ends.source, call);
      return result(ends, await storeImage(store, source, image, [ref.string], call), undefined, id);
    }
    // out to an archive: the image in the temporary store under the name it gets there, then saved
    const tag = dst.ref ?? (src.transport === "berth" ? src.name : src.transport === "docker" ? src.reference.string : undefined);
    if (from !== temp) {
      const source = storeSource(from, id, ends.source);
      await storeImage(temp, source, await resolveSourceImage(temp, source, ends.source, call), [], call);
    }
    if (tag !== undefined) await temp.references.tag(parseReference(tag).string, id, { force: true });
    await saveImages(temp, [tag ?? id], dst.file, call);
    const m = await temp.images.manifest(id);
    return {
      ...ends,
      id,
      digest: m.digest,
      mediaType: m.manifest.mediaType ?? MEDIA_TYPE_OCI_MANIFEST,
      size: m.bytes.length,
      blobs: [],
      manifestsWritten: 1,
      bytesTransferred: 0,
    };
  } finally {
    await temp.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
