/**
 * The two ends of a copy — a registry repository and an OCI layout — behind
 * one pair of small interfaces, so the copy engine never knows which it
 * talks to (the berth store is a third kind of end, in `@berth/image-service`,
 * which depends on this package and not the other way round).
 * @module
 */
import { type Descriptor, INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES } from "@berth/oci";
import { FailedPreconditionError } from "@berth/digest";
import { REGISTRY_ERROR_CODES } from "./errors.js";
import type { OciLayout } from "./layout.js";
import { sniffMediaType } from "./manifest.js";
import type { ManifestResult, Repository } from "./repository.js";
import type { BlobDescriptor } from "./verify.js";

/** A registry repository's coordinates (for the blob-info cache and mounts). */
export interface RegistryLocation {
  registry: string;
  repository: string;
}

/** Where an image is read from. */
export interface ImageSource {
  /** For messages: `docker://host/repo:tag`, `oci:/dir:ref`. */
  readonly description: string;
  /** Set when the source is a registry repository. */
  readonly location?: RegistryLocation;
  /** The manifest or index the reference names, verified. */
  root(signal?: AbortSignal): Promise<ManifestResult>;
  /** A manifest or index by descriptor, verified. */
  manifest(desc: Descriptor, signal?: AbortSignal): Promise<Uint8Array>;
  /**
   * A blob's bytes from `offset`, unverified (the destination verifies as it
   * writes). `gather: false`: chunks as they come, for a destination that
   * gathers them itself (a registry's socket chunks are otherwise gathered
   * into 1 MiB pieces).
   */
  blob(desc: BlobDescriptor, offset: number, signal?: AbortSignal, options?: { gather?: boolean }): AsyncIterable<Uint8Array>;
  /** Let go of what opening it took (an archive's temp layout); the opener calls it after the copy. */
  close?(): Promise<void>;
}

/** What a destination did with a blob. */
export interface PutBlobResult {
  status: "exists" | "mounted" | "uploaded" | "written";
  /** Bytes read from the source for it. */
  bytes: number;
  /** Bytes a resumed write already had. */
  resumedFrom?: number;
  mountedFrom?: string;
}

/** Per-blob context a destination gets. */
export interface PutBlobContext {
  signal?: AbortSignal;
  onProgress?(bytes: number): void;
  /** Repositories of the destination's registry where the blob is known (mount candidates). */
  mountFrom: readonly string[];
}

/** Where a manifest goes: the root of the copy (tagged, or listed by digest) or a child. */
export interface ManifestPlace {
  root: boolean;
  tag?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** Where an image is written. */
export interface ImageDestination {
  readonly description: string;
  readonly location?: RegistryLocation;
  /** Takes a blob's chunks in any size, gathering them itself: the source need not ({@link ImageSource.blob}'s `gather`). */
  readonly gathers?: boolean;
  /** Store a blob (verified by digest and size as it streams); `source(offset)` opens the source's bytes. */
  putBlob(desc: BlobDescriptor, source: (offset: number) => AsyncIterable<Uint8Array>, ctx: PutBlobContext): Promise<PutBlobResult>;
  /** True when the manifest is there already (and, with `tag`, the tag points at it; for the root, it is listed). */
  hasManifest(desc: Descriptor, where: ManifestPlace): Promise<boolean>;
  /** Store a manifest or index; with `tag`, point the tag (ref name) at it. */
  putManifest(desc: Descriptor, bytes: Uint8Array, where: ManifestPlace): Promise<void>;
  /** Finish after the copy (`ok`: it succeeded; an archive is written then) and let go of what opening it took; the opener calls it. */
  close?(ok: boolean): Promise<void>;
}

/** The media type of a manifest read from a layout (the descriptor's, else sniffed from the bytes). */
function manifestMediaType(desc: Descriptor, bytes: Uint8Array): string {
  if (MANIFEST_MEDIA_TYPES.has(desc.mediaType) || INDEX_MEDIA_TYPES.has(desc.mediaType)) return desc.mediaType;
  const sniffed = sniffMediaType(bytes);
  if (!sniffed) throw new FailedPreconditionError(`${desc.digest} is not a manifest or index`, { code: REGISTRY_ERROR_CODES.MANIFEST_UNSUPPORTED });
  return sniffed;
}

/** A repository as a source: `reference` is a tag or a digest. */
export function registrySource(repo: Repository, reference: string): ImageSource {
  return {
    description: `docker://${repo.name}${reference.includes(":") ? "@" : ":"}${reference}`,
    location: { registry: repo.domain, repository: repo.path },
    root: (signal) => repo.getManifest(reference, signal ? { signal } : {}),
    manifest: async (desc, signal) => (await repo.getManifest(desc.digest, signal ? { signal } : {})).bytes,
    blob: (desc, offset, signal, options) =>
      repo.blobChunks(desc, { offset, unverified: true, ...(signal ? { signal } : {}), ...(options?.gather === false ? { gather: false } : {}) }),
  };
}

/**
 * A repository as a destination: HEAD, mount, upload for blobs; a manifest
 * already there (HEAD by tag or digest answers its digest) is not sent again.
 */
export function registryDestination(repo: Repository, options: { chunkSize?: number } = {}): ImageDestination {
  return {
    description: `docker://${repo.name}`,
    location: { registry: repo.domain, repository: repo.path },
    async putBlob(desc, source, ctx) {
      const r = await repo.uploadBlob(desc, source, {
        mountFrom: ctx.mountFrom,
        ...(options.chunkSize ? { chunkSize: options.chunkSize } : {}),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}),
      });
      return { status: r.status, bytes: r.bytes, ...(r.mountedFrom ? { mountedFrom: r.mountedFrom } : {}) };
    },
    async hasManifest(desc, { tag, signal }) {
      const head = await repo.headManifest(tag ?? desc.digest, signal ? { signal } : {});
      return head?.digest === desc.digest;
    },
    async putManifest(desc, bytes, { tag, signal }) {
      await repo.putManifest(tag ?? desc.digest, bytes, desc.mediaType, signal ? { signal } : {});
    },
  };
}

/** A layout as a source: `refName` is an `org.opencontainers.image.ref.name` (optional when the index has one entry). */
export function layoutSource(layout: OciLayout, refName?: string, maxManifestSize = 4 << 20): ImageSource {
  return {
    description: `oci:${layout.dir}${refName !== undefined ? `:${refName}` : ""}`,
    async root() {
      const desc = await layout.resolve(refName);
      const bytes = await layout.readBlob(desc, maxManifestSize);
      return { bytes, digest: desc.digest, size: bytes.length, mediaType: manifestMediaType(desc, bytes) };
    },
    manifest: (desc) => layout.readBlob(desc, maxManifestSize),
    blob: (desc, offset) => layout.blobChunks(desc.digest, offset),
  };
}

/** A layout as a destination (resumable blob writes; `index.json` names the root with the tag). */
export function layoutDestination(layout: OciLayout): ImageDestination {
  return {
    description: `oci:${layout.dir}`,
    async putBlob(desc, source, ctx) {
      const r = await layout.writeBlob(desc, source, { ...(ctx.signal ? { signal: ctx.signal } : {}), ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}) });
      return { status: r.status, bytes: r.bytes, resumedFrom: r.resumedFrom };
    },
    async hasManifest(desc, { root, tag }) {
      if ((await layout.blobSize(desc.digest)) !== desc.size) return false;
      if (!root) return true;
      if (tag === undefined) return (await layout.readIndex()).manifests.some((m) => m.digest === desc.digest);
      try {
        return (await layout.resolve(tag)).digest === desc.digest;
      } catch {
        return false;
      }
    },
    async putManifest(desc, bytes, { root, tag }) {
      await layout.writeBytes(bytes);
      if (root) await layout.setRef(tag, desc);
    },
  };
}
