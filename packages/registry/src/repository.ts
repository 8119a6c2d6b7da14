/**
 * One repository of a registry: manifests (by tag and digest, with the full
 * `Accept` list and `Docker-Content-Digest` checked against the bytes),
 * tags with pagination, referrers, and blobs (HEAD, GET with `Range` resume,
 * mount, upload — the upload protocol is in `upload.ts`).
 * @module
 */
import { Readable } from "node:stream";
import { coalesceChunks, type Digest, FailedPreconditionError, isDigest, NotFoundError, parseDigest, sha256 } from "@berth/digest";
import { type Descriptor, type OciIndex, parseIndex } from "@berth/oci";
import type { RegistryClient, RepositoryOptions } from "./client.js";
import { invalidName, protocolError, REGISTRY_ERROR_CODES, registryError } from "./errors.js";
import { contentType, isTagOrDigest, MANIFEST_ACCEPT, nextLink, refuseSchema1, sniffMediaType } from "./manifest.js";
import { parseErrorBody } from "./transport/auth.js";
import type { RegistryConnection } from "./transport/connect.js";
import { resumableBody } from "./transport/resumable.js";
import { discard, header, type HttpMethod, type RegistryResponse, type RequestBody, readBody } from "./transport/types.js";
import { type UploadOptions, type UploadResult, type UploadStreamOptions, uploadBlob, uploadStream } from "./upload.js";
import { type BlobDescriptor, verifyBytes, verifyStream, type VerifyOptions } from "./verify.js";

/** A manifest or index as the registry holds it. */
export interface ManifestResult {
  /** The exact bytes (their sha256 is `digest`). */
  bytes: Uint8Array;
  digest: Digest;
  mediaType: string;
  size: number;
}

/** What a manifest HEAD tells. */
export interface ManifestHead {
  digest: Digest;
  mediaType: string;
  size: number;
}

/** Per-call options of requests. */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Options of {@link Repository.openBlob}. */
/**
 * Blob bodies reach their consumer in pieces of at least this size (a
 * socket's are 16–64 KiB): each piece costs a consumer the same few steps —
 * a write, a hash update, a decompressor call, awaits — whatever its size.
 */
const BLOB_CHUNK = 1 << 20;

export interface OpenBlobOptions extends CallOptions, Pick<VerifyOptions, "hasher" | "onProgress"> {
  /** Start at this byte (a resumed download). `hasher` must then hold the first `offset` bytes. */
  offset?: number;
  /** Skip the digest check (the caller verifies). Default false. */
  unverified?: boolean;
  /** Called with the offset each (re)connection starts at. */
  onConnect?(offset: number): void;
  /** Gather the socket's chunks into pieces of at least 1 MiB (default true); `false` for a consumer that gathers them itself. */
  gather?: boolean;
}

interface SendInit extends CallOptions {
  headers?: Record<string, string>;
  body?: RequestBody;
  scopes?: readonly string[];
}

/** A repository of a registry. Made by {@link RegistryClient.repository}. */
export class Repository {
  /** Registry domain as in references (`docker.io`, `127.0.0.1:5000`). */
  readonly domain: string;
  /** Repository path (`library/busybox`). */
  readonly path: string;
  /** `domain/path`. */
  readonly name: string;
  readonly client: RegistryClient;
  private readonly push: boolean;

  constructor(client: RegistryClient, domain: string, path: string, options: RepositoryOptions = {}) {
    this.client = client;
    this.domain = domain;
    this.path = path;
    this.name = `${domain}/${path}`;
    this.push = options.push === true;
  }

  /** The token scopes of this repository's requests. */
  scopes(): string[] {
    return [`repository:${this.path}:${this.push ? "pull,push" : "pull"}`];
  }

  /** The connection to this repository's registry (pinged once per client). */
  connection(signal?: AbortSignal): Promise<RegistryConnection> {
    return this.client.connection(this.domain, signal);
  }

  /** A URL under `/v2/<path>/`, or an upload `Location` resolved against the registry. */
  async url(suffix: string, signal?: AbortSignal): Promise<URL> {
    const c = await this.connection(signal);
    return new URL(suffix.startsWith("/") || /^https?:/.test(suffix) ? suffix : `/v2/${this.path}/${suffix}`, c.origin);
  }

  /** Send a request to this repository (for the blob and upload code). */
  async send(method: HttpMethod, url: URL, init: SendInit = {}): Promise<RegistryResponse> {
    const c = await this.connection(init.signal);
    return c.transport({
      method,
      url,
      headers: init.headers ?? {},
      scopes: init.scopes ?? this.scopes(),
      ...(init.body !== undefined ? { body: init.body } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    });
  }

  /** Turn a refusal into a typed error (reads the error body). */
  async failure(res: RegistryResponse, what: string, notFoundCode?: string): Promise<Error> {
    const body = res.body.readableEnded ? undefined : await readBody(res, 64 << 10).catch(() => undefined);
    return registryError(`${what} (${this.name})`, res.status, parseErrorBody(body), notFoundCode ? { notFoundCode } : {});
  }

  private checkRef(reference: string): void {
    if (!isTagOrDigest(reference)) throw invalidName(`${JSON.stringify(reference)} is neither a tag nor a digest`);
  }

  /**
   * HEAD a manifest by tag or digest: its digest, media type and size, or
   * `undefined` when the registry has none. A registry that answers HEAD
   * without `Docker-Content-Digest` is asked with GET instead.
   */
  async headManifest(reference: string, options: CallOptions = {}): Promise<ManifestHead | undefined> {
    this.checkRef(reference);
    const url = await this.url(`manifests/${reference}`, options.signal);
    const res = await this.send("HEAD", url, { headers: { accept: MANIFEST_ACCEPT.join(", ") }, ...options });
    await discard(res);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await this.failure(res, `HEAD manifest ${reference}`);
    const d = header(res, "docker-content-digest");
    const size = Number(header(res, "content-length"));
    const mediaType = contentType(res);
    if (!d || !isDigest(d) || !mediaType || !Number.isSafeInteger(size)) {
      const m = await this.getManifest(reference, options);
      return { digest: m.digest, mediaType: m.mediaType, size: m.size };
    }
    if (isDigest(reference) && d !== reference) throw protocolError(`HEAD manifest ${reference} (${this.name}) answered digest ${d}`);
    return { digest: d as Digest, mediaType, size };
  }

  /**
   * GET a manifest or index by tag or digest, with the full `Accept` list.
   * The bytes are checked: against the digest asked for, and against
   * `Docker-Content-Digest` when the registry sends it.
   * @throws NotFoundError `ERR_MANIFEST_NOT_FOUND`; FailedPreconditionError `ERR_MANIFEST_TOO_LARGE`,
   *   `ERR_MANIFEST_UNSUPPORTED` (schema 1); DataIntegrityError `ERR_DIGEST_MISMATCH`
   */
  async getManifest(reference: string, options: CallOptions & { accept?: readonly string[] } = {}): Promise<ManifestResult> {
    this.checkRef(reference);
    const url = await this.url(`manifests/${reference}`, options.signal);
    const res = await this.send("GET", url, { headers: { accept: (options.accept ?? MANIFEST_ACCEPT).join(", ") }, ...(options.signal ? { signal: options.signal } : {}) });
    if (res.status !== 200) throw await this.failure(res, `manifest ${reference}`, REGISTRY_ERROR_CODES.MANIFEST_NOT_FOUND);
    const max = this.client.maxManifestSize;
    const declared = Number(header(res, "content-length"));
    if (Number.isFinite(declared) && declared > max) {
      await discard(res);
      throw new FailedPreconditionError(`manifest ${reference} (${this.name}) is ${declared} bytes, more than the ${max} allowed`, {
        code: REGISTRY_ERROR_CODES.MANIFEST_TOO_LARGE,
      });
    }
    const bytes = await readBody(res, max);
    if (!bytes) {
      throw new FailedPreconditionError(`manifest ${reference} (${this.name}) is more than the ${max} bytes allowed`, {
        code: REGISTRY_ERROR_CODES.MANIFEST_TOO_LARGE,
      });
    }
    const digest = sha256(bytes);
    if (isDigest(reference)) verifyBytes(bytes, { digest: reference as Digest }, "manifest");
    const said = header(res, "docker-content-digest");
    if (said && isDigest(said) && said.startsWith("sha256:") && said !== digest) {
      verifyBytes(bytes, { digest: said as Digest }, `manifest ${reference}`);
    }
    const mediaType = contentType(res) ?? sniffMediaType(bytes);
    if (!mediaType) throw protocolError(`manifest ${reference} (${this.name}) has no media type`);
    refuseSchema1(mediaType, `manifest ${reference} (${this.name})`);
    return { bytes, digest, mediaType, size: bytes.length };
  }

  /**
   * PUT a manifest under a tag or its digest. Returns its digest (checked
   * against the registry's `Docker-Content-Digest`).
   */
  async putManifest(reference: string, bytes: Uint8Array, mediaType: string, options: CallOptions = {}): Promise<Digest> {
    this.checkRef(reference);
    const digest = sha256(bytes);
    if (isDigest(reference) && reference !== digest) throw invalidName(`manifest bytes hash to ${digest}, not ${reference}`);
    const url = await this.url(`manifests/${reference}`, options.signal);
    const res = await this.send("PUT", url, { headers: { "content-type": mediaType }, body: bytes, ...options });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await this.failure(res, `PUT manifest ${reference}`);
    await discard(res);
    const said = header(res, "docker-content-digest");
    if (said && said !== digest) throw protocolError(`PUT manifest ${reference} (${this.name}): registry says ${said}, bytes are ${digest}`);
    return digest;
  }

  /** DELETE a manifest by digest (and, where the registry allows, a tag). */
  async deleteManifest(reference: string, options: CallOptions = {}): Promise<void> {
    this.checkRef(reference);
    const url = await this.url(`manifests/${reference}`, options.signal);
    const res = await this.send("DELETE", url, { ...options, scopes: [`repository:${this.path}:delete`] });
    if (res.status !== 202 && res.status !== 200) throw await this.failure(res, `DELETE manifest ${reference}`);
    await discard(res);
  }

  /**
   * The repository's tags, page by page (`n`, `last`, following `Link`
   * headers as the spec says).
   */
  async *tags(options: CallOptions & { pageSize?: number; last?: string } = {}): AsyncGenerator<string> {
    let url = await this.url("tags/list", options.signal);
    if (options.pageSize) url.searchParams.set("n", String(options.pageSize));
    if (options.last) url.searchParams.set("last", options.last);
    for (let pages = 0; pages < 100_000; pages++) {
      const res = await this.send("GET", url, options);
      if (res.status !== 200) throw await this.failure(res, "tags/list", REGISTRY_ERROR_CODES.REPOSITORY_NOT_FOUND);
      const bytes = await readBody(res, 16 << 20);
      let tags: unknown;
      try {
        tags = (JSON.parse(new TextDecoder().decode(bytes)) as { tags?: unknown }).tags;
      } catch (cause) {
        throw protocolError(`tags/list (${this.name}): not JSON`, { cause });
      }
      if (tags !== null && tags !== undefined && !Array.isArray(tags)) throw protocolError(`tags/list (${this.name}): "tags" is not a list`);
      for (const t of (tags as unknown[] | null) ?? []) if (typeof t === "string") yield t;
      const next = nextLink(res, url);
      if (!next) return;
      url = next;
    }
  }

  /** Every tag, in the registry's order. */
  async listTags(options: CallOptions & { pageSize?: number } = {}): Promise<string[]> {
    const out: string[] = [];
    for await (const t of this.tags(options)) out.push(t);
    return out;
  }

  /**
   * The manifests that refer to `digest` (OCI 1.1 referrers API), filtered by
   * `artifactType`; for a registry without the API (404), the fallback tag
   * `sha256-<hex>` of the spec's tag schema.
   */
  async referrers(digest: Digest, options: CallOptions & { artifactType?: string } = {}): Promise<Descriptor[]> {
    parseDigest(digest);
    let url = await this.url(`referrers/${digest}`, options.signal);
    if (options.artifactType) url.searchParams.set("artifactType", options.artifactType);
    const out: Descriptor[] = [];
    let filtered = false;
    for (let pages = 0; pages < 10_000; pages++) {
      const res = await this.send("GET", url, options);
      if (res.status === 404 && pages === 0) {
        await discard(res);
        return this.referrersByTag(digest, options);
      }
      if (res.status !== 200) throw await this.failure(res, `referrers ${digest}`);
      filtered = filtered || (header(res, "oci-filters-applied") ?? "").split(",").map((s) => s.trim()).includes("artifactType");
      const bytes = await readBody(res, this.client.maxManifestSize);
      if (!bytes) throw new FailedPreconditionError(`referrers of ${digest} (${this.name}): index too large`, { code: REGISTRY_ERROR_CODES.MANIFEST_TOO_LARGE });
      out.push(...parseIndex(bytes, `referrers of ${digest}`).manifests);
      const next = nextLink(res, url);
      if (!next) break;
      url = next;
    }
    return options.artifactType && !filtered ? out.filter((d) => d.artifactType === options.artifactType) : out;
  }

  private async referrersByTag(digest: Digest, options: CallOptions & { artifactType?: string }): Promise<Descriptor[]> {
    const tag = digest.replace(":", "-");
    let index: OciIndex;
    try {
      index = parseIndex((await this.getManifest(tag, options)).bytes, `referrers tag ${tag}`);
    } catch (err) {
      if (err instanceof NotFoundError) return [];
      throw err;
    }
    return options.artifactType ? index.manifests.filter((d) => d.artifactType === options.artifactType) : index.manifests;
  }

  /** HEAD a blob: its size, or `undefined` when this repository does not have it. */
  async headBlob(digest: Digest, options: CallOptions = {}): Promise<{ size: number } | undefined> {
    const url = await this.url(`blobs/${parseDigest(digest)}`, options.signal);
    const res = await this.send("HEAD", url, options);
    await discard(res);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await this.failure(res, `HEAD blob ${digest}`, REGISTRY_ERROR_CODES.BLOB_NOT_FOUND);
    const size = Number(header(res, "content-length"));
    return { size: Number.isSafeInteger(size) ? size : -1 };
  }

  /**
   * A blob's bytes as a stream, from `offset`, reconnecting with `Range`
   * when the connection breaks, and verified against `desc` as it streams
   * (the stream fails at its end on a digest or size mismatch).
   */
  openBlob(desc: BlobDescriptor, options: OpenBlobOptions = {}): Readable {
    return Readable.from(this.blobChunks(desc, options), { objectMode: false });
  }

  /** {@link openBlob} as an async iterable of chunks. */
  async *blobChunks(desc: BlobDescriptor, options: OpenBlobOptions = {}): AsyncGenerator<Uint8Array> {
    const url = await this.url(`blobs/${parseDigest(desc.digest)}`, options.signal);
    const offset = options.offset ?? 0;
    const chunks = resumableBody(
      (req) => this.send(req.method, req.url, { ...(req.headers ? { headers: req.headers } : {}), ...(req.signal ? { signal: req.signal } : {}) }),
      { method: "GET", url, ...(options.signal ? { signal: options.signal } : {}) },
      {
        offset,
        size: desc.size,
        onError: (res) => this.failure(res, `blob ${desc.digest}`, REGISTRY_ERROR_CODES.BLOB_NOT_FOUND),
        ...(options.onConnect ? { onConnect: options.onConnect } : {}),
      },
    );
    const body = options.gather === false ? chunks : coalesceChunks(chunks, BLOB_CHUNK);
    if (options.unverified) {
      yield* body;
      return;
    }
    yield* verifyStream(body, desc, {
      offset,
      ...(options.hasher ? { hasher: options.hasher } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  }

  /**
   * Try to mount a blob from another repository of the same registry.
   * True when mounted (201); false when the registry started an upload
   * instead (202: the session is cancelled) or refused.
   */
  async mountBlob(digest: Digest, from: string, options: CallOptions = {}): Promise<boolean> {
    const url = await this.url("blobs/uploads/", options.signal);
    url.searchParams.set("mount", parseDigest(digest));
    url.searchParams.set("from", from);
    const res = await this.send("POST", url, { ...options, scopes: [...this.scopes(), `repository:${from}:pull`] });
    await discard(res);
    if (res.status === 201) return true;
    if (res.status === 202) {
      const loc = header(res, "location");
      if (loc) {
        const cancel = await this.send("DELETE", await this.url(loc), options).catch(() => undefined);
        if (cancel) await discard(cancel);
      }
    }
    return false;
  }

  /**
   * Make sure the repository has a blob: HEAD first, then a mount from each
   * of `options.mountFrom` (repositories of the same registry the blob is
   * known in), then an upload (monolithic, or chunked with `chunkSize` or when
   * the registry asks for a minimum chunk length).
   */
  uploadBlob(desc: BlobDescriptor, source: (offset: number) => AsyncIterable<Uint8Array>, options: UploadOptions = {}): Promise<UploadResult> {
    return uploadBlob(this, desc, source, options);
  }

  /** Upload bytes whose digest is not known yet (one streamed PATCH, then PUT with the digest they hashed to). */
  uploadStream(source: AsyncIterable<Uint8Array>, options: UploadStreamOptions = {}): Promise<{ digest: Digest; size: number }> {
    return uploadStream(this, source, options);
  }
}
