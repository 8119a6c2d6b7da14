/**
 * The contract between the registry's HTTP layer and the storage behind it.
 *
 * The HTTP layer (this app) parses and validates every path, header and query
 * parameter, checks access, and hands typed values to a {@link RegistryBackend}.
 * The backend holds the registry's semantics: repositories, manifests kept byte
 * for byte, tags, referrers, blob membership per repository, uploads as
 * resumable ingests, mounts and deletes. It knows nothing of HTTP: it takes
 * typed values and throws typed errors (berth error classes from
 * `@berth/digest`, with a `code` from {@link REGISTRY_ERROR_CODES} or one of
 * the digest/oci codes listed there), which the HTTP layer maps to the OCI
 * Distribution spec's status codes and error JSON in one table
 * (`@berth/server`'s `registry/errors.ts`).
 *
 * `StoreRegistryBackend` (this directory) implements it over the berth
 * store; `@berth/server`'s tests also run a memory double of it.
 * @module
 */
import type { Digest } from "@berth/digest";
import type { ContentReader } from "@berth/layer-store";
import type { Descriptor } from "@berth/oci";
export { REGISTRY_ERROR_CODES, type RegistryErrorCode } from "../errors.js";


/**
 * Which blobs a request may see through a repository.
 *
 * With auth on, the server always asks with `membersOnly: true`: a blob is
 * visible through `repository` only when it belongs to it (pushed or mounted
 * into it, or referenced by one of its manifests), so a token for repository A
 * cannot read repository B's blobs by digest. With auth off the server asks
 * with `membersOnly: false` and the backend may answer from every blob it has.
 */
export interface BlobScope {
  /** The repository in the request path (validated name). */
  repository: string;
  /** Only blobs that belong to `repository` are visible. */
  membersOnly: boolean;
}

/** What a backend knows of a stored blob. */
export interface BlobInfo {
  digest: Digest;
  size: number;
}

/**
 * An open blob: positional reads (the store's `ContentReader`). The HTTP
 * layer copies it with `pumpReader` and closes it when the response ends or fails.
 */
export type BlobReader = ContentReader;

/** A manifest or tag reference in a request: exactly one of the two. */
export type ManifestRef = { tag: string; digest?: undefined } | { digest: Digest; tag?: undefined };

/** A stored manifest, exactly as it was pushed. */
export interface StoredManifest {
  digest: Digest;
  /** The media type it was stored under (its `mediaType` field, else the `Content-Type` it was pushed with). */
  mediaType: string;
  /** The bytes as pushed. */
  content: Uint8Array;
}

/** A manifest push. */
export interface PutManifestRequest {
  /** The manifest bytes (the HTTP layer has already enforced the size limit). */
  content: Uint8Array;
  /** The request's `Content-Type` without parameters, or undefined when absent. */
  contentType: string | undefined;
  /** Where it was pushed: a tag to point at it, or the digest the bytes must have. */
  reference: ManifestRef;
  /**
   * As {@link BlobScope.membersOnly}: when false (auth off, every blob is
   * visible through every repository), a descriptor may name any blob the
   * backend has, which then becomes a member of the repository. Default true.
   */
  membersOnly?: boolean;
}

/** The outcome of a manifest push. */
export interface PutManifestResult {
  digest: Digest;
  /** The digest of the manifest's `subject`, when it has one (the server answers `OCI-Subject`). */
  subject?: Digest;
}

/** State of an upload session. */
export interface UploadStatus {
  /** Opaque session ID: 1–128 characters of `[A-Za-z0-9_.=-]`, unguessable. */
  id: string;
  /** Bytes received so far; the next chunk must start here. */
  offset: number;
}

/** A chunk of an upload. */
export interface AppendRequest {
  /**
   * Where the chunk starts, from `Content-Range`; undefined for a streamed
   * PATCH without one (appended at the current offset).
   */
  start?: number;
  /** The chunk's length when known (Content-Length); the backend must not read more than the stream gives. */
  length?: number;
  /** The bytes. Read to the end whatever its timing; never buffered whole. */
  body: AsyncIterable<Uint8Array>;
  /** Aborted when the client goes away or the server shuts down. */
  signal: AbortSignal;
}

/** A page request over a sorted list (`n` / `last`). */
export interface PageRequest {
  /** Most entries to return (already capped by the server). */
  limit: number;
  /** Return only entries after this one (exclusive). */
  last?: string;
}

/** A page of a sorted list. */
export interface Page<T> {
  items: T[];
  /** True when entries follow the last one returned. */
  more: boolean;
}

/** Options of {@link RegistryBackend.mountBlob}. */
export interface MountRequest {
  /** The repository named by `from`, when given (the server has checked pull access to it). */
  from?: string;
  /**
   * Repositories the caller may read. Automatic mounting (no `from`, or the blob
   * not in `from`) may take the blob only from a repository this accepts.
   */
  readable: (repository: string) => boolean;
}

/** Options of {@link RegistryBackend.listReferrers}. */
export interface ReferrersRequest {
  /** Only referrers with this artifact type. */
  artifactType?: string;
}

/** The referrers of a digest. */
export interface ReferrersResult {
  /**
   * Descriptors of the manifests and indexes in the repository whose `subject`
   * is the digest: `mediaType`, `digest`, `size`, `artifactType` (the
   * manifest's, else its config's media type; omitted for an index without
   * one) and the manifest's `annotations`.
   */
  manifests: Descriptor[];
  /** Filters the backend applied (`["artifactType"]` when it filtered). */
  filtersApplied: string[];
}

/**
 * Storage of an OCI Distribution registry. Every method takes validated,
 * typed values; names are repository names that matched the spec's grammar;
 * digests passed `parseDigest`; tags matched the tag grammar.
 *
 * Lists are sorted by {@link compareTags} order for tags and by byte order
 * for repository names; `last` is exclusive.
 */
export interface RegistryBackend {
  // ---- blobs ----
  /**
   * Size and digest of a blob visible through `scope` (a HEAD). A pusher told
   * that a blob exists names it in its manifest without sending it, so the
   * store's backend keeps such a blob for the repository from then on, as a mount.
   * @throws `ERR_BLOB_UNKNOWN`
   */
  statBlob(scope: BlobScope, digest: Digest): Promise<BlobInfo>;
  /** Open a blob visible through `scope` for reading. @throws `ERR_BLOB_UNKNOWN` */
  openBlob(scope: BlobScope, digest: Digest): Promise<BlobReader>;
  /**
   * Remove a blob from a repository (what `DELETE /v2/<name>/blobs/<digest>`
   * means): it stops being visible there; its bytes go when nothing else holds them.
   * @throws `ERR_BLOB_UNKNOWN`, `ERR_UNSUPPORTED`, `ERR_DENIED`
   */
  deleteBlob(scope: BlobScope, digest: Digest): Promise<void>;
  /**
   * Make `digest` a member of `repository` without an upload, when the caller
   * may read a repository that has it. Resolves with the blob, or `undefined`
   * when it cannot be mounted (the server then starts an upload).
   */
  mountBlob(repository: string, digest: Digest, request: MountRequest): Promise<BlobInfo | undefined>;

  // ---- uploads ----
  /** Start an upload session in `repository`. */
  createUpload(repository: string): Promise<UploadStatus>;
  /** The state of a session. @throws `ERR_UPLOAD_UNKNOWN` */
  getUpload(repository: string, id: string): Promise<UploadStatus>;
  /**
   * Append a chunk. Chunks of one session are written one at a time; one that
   * does not start at the offset throws `ERR_UPLOAD_OFFSET` (with the current
   * offset) and writes nothing. If the body fails part way, what was received
   * stays and the offset says how much.
   * @throws `ERR_UPLOAD_UNKNOWN`, `ERR_UPLOAD_OFFSET`, `ERR_UPLOAD_INVALID`
   */
  appendUpload(repository: string, id: string, chunk: AppendRequest): Promise<UploadStatus>;
  /**
   * Finish a session: the received bytes must hash to `digest` (and have
   * `size`, when given); then the blob is stored, visible, and a member of
   * `repository`, and the session is gone. On a mismatch nothing becomes
   * visible and the session is discarded.
   * @throws `ERR_UPLOAD_UNKNOWN`, `ERR_DIGEST_MISMATCH`, `ERR_SIZE_MISMATCH`, `ERR_DIGEST_UNSUPPORTED`
   */
  commitUpload(repository: string, id: string, digest: Digest, signal: AbortSignal): Promise<BlobInfo>;
  /** Discard a session and what it received. @throws `ERR_UPLOAD_UNKNOWN` */
  cancelUpload(repository: string, id: string): Promise<void>;

  // ---- manifests and tags ----
  /** A manifest by tag or digest. @throws `ERR_MANIFEST_UNKNOWN`, `ERR_NAME_UNKNOWN` */
  getManifest(repository: string, reference: ManifestRef): Promise<StoredManifest>;
  /**
   * Store a manifest byte for byte (creating the repository if needed), point
   * the tag at it when pushed by tag, record its `subject` for the referrers
   * API. A `subject` that does not exist is accepted (spec: referrers may be
   * pushed first); any other descriptor must resolve in the repository.
   * @throws `ERR_MANIFEST_INVALID`, `ERR_MANIFEST_BLOB_UNKNOWN`, `ERR_DIGEST_MISMATCH` (pushed by digest), `ERR_DIGEST_UNSUPPORTED`
   */
  putManifest(repository: string, request: PutManifestRequest): Promise<PutManifestResult>;
  /**
   * Delete a manifest by digest and every tag of the repository pointing at
   * it; what only it referenced becomes garbage.
   * @throws `ERR_MANIFEST_UNKNOWN`, `ERR_NAME_UNKNOWN`, `ERR_UNSUPPORTED`
   */
  deleteManifest(repository: string, digest: Digest): Promise<void>;
  /** Delete one tag (the manifest stays). @throws `ERR_MANIFEST_UNKNOWN`, `ERR_NAME_UNKNOWN`, `ERR_UNSUPPORTED` */
  deleteTag(repository: string, tag: string): Promise<void>;
  /** A page of the repository's tags, sorted. @throws `ERR_NAME_UNKNOWN` */
  listTags(repository: string, page: PageRequest): Promise<Page<string>>;
  /** Referrers of `digest` in `repository`; an unknown repository or digest has none. */
  listReferrers(repository: string, digest: Digest, request: ReferrersRequest): Promise<ReferrersResult>;
  /** A page of repository names, sorted by byte order, keeping only those `visible` accepts. */
  listRepositories(page: PageRequest, visible: (repository: string) => boolean): Promise<Page<string>>;
}

/**
 * The order of tag lists: case-insensitive (the spec's "lexical order, i.e.
 * case-insensitive alphanumeric order"), then byte order to separate tags that
 * differ only in case. Backends sort with it and compare `last` with it.
 */
export function compareTags(a: string, b: string): number {
  const la = a.toLowerCase();
  const lb = b.toLowerCase();
  if (la !== lb) return la < lb ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
