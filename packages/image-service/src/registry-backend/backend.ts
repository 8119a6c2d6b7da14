/**
 * `StoreRegistryBackend`: the OCI Distribution registry's storage over a
 * berth store (see the package README, "The registry over the store").
 * Blobs are the store's content; uploads are its ingests
 * ({@link UploadSessions}); manifests are kept byte for byte in the content
 * store and listed, with tags, blob membership and referrers, in one pin
 * record per repository ({@link RecordStore}); image manifests pushed by a
 * client become images of the store ({@link importStoredManifest}) and the
 * store's images are served as their repositories' manifests
 * ({@link StoreImages}).
 * @module
 */
import { type Digest, digestAlgorithm, DigestMismatchError, hasCode, InvalidArgumentError, NotFoundError, sha256 } from "@berth/digest";
import type { Store } from "@berth/image-store";
import { REGISTRY_ERROR_CODES as C, ImageServiceErrorCode } from "../errors.js";
import { importStoredManifest } from "../registry.js";
import type { ManifestEntry, RepoRecord } from "./records.js";
import { RecordStore, recordHas, recordPins } from "./records.js";
import { registryName, type StoreRepository, storeRepository } from "./names.js";
import { parsePush } from "./manifests.js";
import { StoreImages } from "./store-images.js";
import {
  type AppendRequest,
  type BlobInfo,
  type BlobReader,
  type BlobScope,
  compareTags,
  type ManifestRef,
  type MountRequest,
  type Page,
  type PageRequest,
  type PutManifestRequest,
  type PutManifestResult,
  type ReferrersRequest,
  type ReferrersResult,
  type RegistryBackend,
  type StoredManifest,
  type UploadStatus,
} from "./types.js";
import { UploadSessions } from "./uploads.js";

/** Options of {@link StoreRegistryBackend}. */
export interface StoreRegistryBackendOptions {
  /** An upload session idle this long is discarded with what it received. Default 1 h. */
  uploadIdleTimeoutMs?: number;
  /**
   * A blob pushed or mounted into a repository and named by none of its
   * manifests stays a member (kept from GC) this long. Default 24 h.
   */
  blobGraceMs?: number;
}

function manifestUnknown(repository: string, ref: string): NotFoundError {
  return new NotFoundError(`manifest unknown: ${repository} ${ref}`, { code: C.manifestUnknown, details: { repository, reference: ref } });
}

function nameUnknown(repository: string): NotFoundError {
  return new NotFoundError(`repository ${repository} unknown`, { code: C.nameUnknown, details: { repository } });
}

function blobUnknown(repository: string, digest: Digest): NotFoundError {
  return new NotFoundError(`blob ${digest} unknown to repository ${repository}`, { code: C.blobUnknown, details: { digest } });
}

function page<T>(sorted: T[], req: PageRequest, cmp: (a: T, b: T) => number, last: T | undefined): Page<T> {
  const from = last === undefined ? sorted : sorted.filter((x) => cmp(x, last) > 0);
  return { items: from.slice(0, req.limit), more: from.length > req.limit };
}

/** Make `digest` a member of the record's repository (again). */
function addBlob(rec: RepoRecord, digest: Digest): void {
  rec.blobs[digest] ??= Date.now();
  if (rec.deleted) delete rec.deleted[digest];
}

const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A {@link RegistryBackend} over a berth store (see the module doc). */
export class StoreRegistryBackend implements RegistryBackend {
  readonly records: RecordStore;
  readonly images: StoreImages;
  readonly uploads: UploadSessions;
  readonly blobGraceMs: number;

  constructor(
    readonly store: Store,
    opts: StoreRegistryBackendOptions = {},
  ) {
    this.records = new RecordStore(store);
    this.images = new StoreImages(store);
    this.uploads = new UploadSessions(store, opts.uploadIdleTimeoutMs ?? 3_600_000);
    this.blobGraceMs = opts.blobGraceMs ?? 86_400_000;
  }

  // ---- membership ----

  /** True when `digest` belongs to the repository (its record, or its store images). */
  async #isMember(repo: StoreRepository, rec: RepoRecord | undefined, digest: Digest): Promise<boolean> {
    if (recordHas(rec, digest)) return true;
    return (await this.images.members(repo.name)).has(digest);
  }

  async #visible(scope: BlobScope, digest: Digest): Promise<BlobInfo> {
    const repo = storeRepository(scope.repository);
    const rec = await this.records.get(repo.name);
    const hidden = scope.membersOnly || rec?.deleted?.[digest] !== undefined;
    if (hidden && !(await this.#isMember(repo, rec, digest))) throw blobUnknown(scope.repository, digest);
    try {
      return await this.store.content.info(digest);
    } catch (err) {
      if (hasCode(err, "ERR_BLOB_NOT_FOUND")) throw blobUnknown(scope.repository, digest);
      throw err;
    }
  }

  // ---- blobs ----

  async statBlob(scope: BlobScope, digest: Digest): Promise<BlobInfo> {
    const info = await this.#visible(scope, digest);
    const name = storeRepository(scope.repository).name;
    if (recordPins(await this.records.get(name), digest)) return info;
    // A pusher told that a blob exists names it in its manifest without sending it. What
    // keeps it now (an image, another repository) may go before that manifest comes (an
    // rmi and a GC in another process): the repository keeps it from here, as after a mount.
    return this.#keep(scope.repository, digest);
  }

  /** Make the stored blob `digest` a member of `repository`, kept by its record; checked and pinned with GC held off. */
  #keep(repository: string, digest: Digest): Promise<BlobInfo> {
    return this.store.withoutGc(async () => {
      const info = await this.store.content.info(digest).catch((err: unknown) => {
        throw hasCode(err, "ERR_BLOB_NOT_FOUND") ? blobUnknown(repository, digest) : err;
      });
      await this.records.update(storeRepository(repository).name, (rec) => addBlob(rec, digest));
      return { digest, size: info.size };
    });
  }

  async openBlob(scope: BlobScope, digest: Digest): Promise<BlobReader> {
    await this.#visible(scope, digest);
    try {
      return await this.store.content.openReader(digest);
    } catch (err) {
      throw hasCode(err, "ERR_BLOB_NOT_FOUND") ? blobUnknown(scope.repository, digest) : err;
    }
  }

  async deleteBlob(scope: BlobScope, digest: Digest): Promise<void> {
    const repo = storeRepository(scope.repository);
    await this.records.update(repo.name, (rec) => {
      if (rec.blobs[digest] === undefined) throw blobUnknown(scope.repository, digest);
      delete rec.blobs[digest];
      (rec.deleted ??= {})[digest] = Date.now();
    });
  }

  async mountBlob(repository: string, digest: Digest, request: MountRequest): Promise<BlobInfo | undefined> {
    const info = await this.store.content.info(digest).catch(() => undefined);
    if (!info) return undefined;
    const candidates: StoreRepository[] = [];
    if (request.from !== undefined) candidates.push(storeRepository(request.from));
    for (const rec of await this.records.all()) {
      const familiar = registryName(rec.name);
      if (familiar !== undefined && recordHas(rec, digest)) candidates.push({ name: rec.name, familiar });
    }
    let found = false;
    for (const c of candidates) {
      if (!request.readable(c.familiar) && !(request.from !== undefined && storeRepository(request.from).name === c.name && request.readable(request.from))) continue;
      if (await this.#isMember(c, await this.records.get(c.name), digest)) {
        found = true;
        break;
      }
    }
    if (!found) return undefined;
    return this.#keep(repository, digest).catch((err: unknown) => {
      if (hasCode(err, C.blobUnknown)) return undefined; // collected meanwhile: the client uploads it
      throw err;
    });
  }

  // ---- uploads ----

  createUpload(repository: string): Promise<UploadStatus> {
    return this.uploads.create(storeRepository(repository).name);
  }

  async getUpload(repository: string, id: string): Promise<UploadStatus> {
    return this.uploads.status(storeRepository(repository).name, id);
  }

  appendUpload(repository: string, id: string, chunk: AppendRequest): Promise<UploadStatus> {
    return this.uploads.append(storeRepository(repository).name, id, chunk);
  }

  commitUpload(repository: string, id: string, digest: Digest, _signal: AbortSignal): Promise<BlobInfo> {
    const name = storeRepository(repository).name;
    return this.uploads.commit(name, id, digest, async (blob) => {
      // recorded while the session's lease still protects the blob
      await this.records.update(name, (rec) => addBlob(rec, blob.digest));
      return { digest: blob.digest, size: blob.size };
    });
  }

  cancelUpload(repository: string, id: string): Promise<void> {
    return this.uploads.cancel(storeRepository(repository).name, id);
  }

  // ---- manifests and tags ----

  async #readStored(digest: Digest, entry: ManifestEntry): Promise<StoredManifest> {
    return { digest, mediaType: entry.mediaType, content: await this.store.readDocument(digest) };
  }

  /** A pushed manifest of `rec` that is image `id` (the one `preferred` names first), else the store's own manifest of it. */
  async #imageManifest(rec: RepoRecord | undefined, id: Digest, preferred: Digest | undefined): Promise<StoredManifest> {
    if (rec) {
      const pushed = Object.entries(rec.manifests)
        .filter(([, e]) => e.image === id)
        .sort(([a, x], [b, y]) => (a === preferred ? -1 : b === preferred ? 1 : y.at - x.at));
      for (const [d, e] of pushed) {
        if (await this.store.content.has(d)) return this.#readStored(d as Digest, e);
      }
    }
    return this.images.manifest(id);
  }

  async getManifest(repository: string, reference: ManifestRef): Promise<StoredManifest> {
    const repo = storeRepository(repository);
    const rec = await this.records.get(repo.name);
    if (reference.tag !== undefined) {
      const id = await this.images.tagged(repo.name, reference.tag);
      const tagged = rec?.tags[reference.tag];
      if (id) return this.#imageManifest(rec, id, tagged);
      const entry = tagged && rec?.manifests[tagged];
      if (tagged && entry && !entry.image) return this.#readStored(tagged, entry);
      throw manifestUnknown(repository, reference.tag);
    }
    const digest = reference.digest;
    const entry = rec?.manifests[digest];
    if (entry && (!entry.image || (await this.store.images.has(entry.image)))) return this.#readStored(digest, entry);
    const id = await this.images.byDigest(repo.name, digest);
    if (id) {
      const own = await this.images.manifest(id);
      if (own.digest === digest) return own;
    }
    throw manifestUnknown(repository, digest);
  }

  async putManifest(repository: string, request: PutManifestRequest): Promise<PutManifestResult> {
    const repo = storeRepository(repository);
    const parsed = parsePush(request.content, request.contentType);
    if (request.reference.digest && digestAlgorithm(request.reference.digest) !== "sha256") {
      throw new InvalidArgumentError(`digest ${request.reference.digest}: only sha256 is supported`, { code: "ERR_DIGEST_UNSUPPORTED" });
    }
    const digest = sha256(request.content);
    if (request.reference.digest && request.reference.digest !== digest) {
      throw new DigestMismatchError(`manifest has digest ${digest}, not ${request.reference.digest}`, { details: { digest: request.reference.digest } });
    }
    const rec = await this.records.get(repo.name);
    const anyBlob = request.membersOnly === false;
    for (const d of parsed.needed) {
      if (!(anyBlob || (await this.#isMember(repo, rec, d.digest))) || !(await this.store.content.has(d.digest))) {
        throw new InvalidArgumentError(`manifest refers to ${d.digest}, unknown to ${repository}`, { code: C.manifestBlobUnknown, details: { digest: d.digest } });
      }
    }
    const tag = request.reference.tag;
    const lease = await this.store.lease();
    try {
      await this.store.content.put(request.content, { digest }, { lease });
      let image: Digest | undefined;
      if (parsed.imageCandidate) image = await this.#importImage(repo, digest, parsed.mediaType, request.content, tag);
      const entry: ManifestEntry = {
        mediaType: parsed.mediaType,
        size: request.content.byteLength,
        refs: [...new Set(parsed.needed.map((d) => d.digest))],
        ...(parsed.subject ? { subject: parsed.subject.digest } : {}),
        ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
        ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
        ...(image ? { image } : {}),
        at: Date.now(),
      };
      await this.records.update(repo.name, (r) => {
        r.manifests[digest] = entry;
        if (tag !== undefined) r.tags[tag] = digest;
      });
      // a tag now names a manifest the store does not hold as an image: the store's tag goes
      if (tag !== undefined && !image) await this.store.references.untag(`${repo.name}:${tag}`).catch(() => {});
    } finally {
      await lease.release();
    }
    return parsed.subject ? { digest, subject: parsed.subject.digest } : { digest };
  }

  /** Make a pushed image manifest an image of the store; undefined when it is not one the store can hold. */
  async #importImage(repo: StoreRepository, digest: Digest, mediaType: string, bytes: Uint8Array, tag: string | undefined): Promise<Digest | undefined> {
    const refs = [...(tag !== undefined ? [`${repo.name}:${tag}`] : []), `${repo.name}@${digest}`];
    try {
      return await importStoredManifest(this.store, { bytes, digest, mediaType }, refs);
    } catch (err) {
      if (hasCode(err, ImageServiceErrorCode.UNSUPPORTED_IMAGE) || hasCode(err, "ERR_INVALID_CONFIG") || hasCode(err, "ERR_INVALID_JSON")) return undefined;
      if (hasCode(err, "ERR_LOCK_TIMEOUT") || hasCode(err, "ERR_ABORTED")) throw err;
      throw new InvalidArgumentError(`manifest ${digest} is not a valid image: ${(err as Error).message}`, { code: C.manifestInvalid, cause: err });
    }
  }

  async deleteManifest(repository: string, digest: Digest): Promise<void> {
    const repo = storeRepository(repository);
    const rec = await this.records.get(repo.name);
    const entry = rec?.manifests[digest];
    const storeId = entry?.image ?? (await this.images.byDigest(repo.name, digest));
    if (!entry && !storeId) {
      if (!rec && (await this.images.references(repo.name)).length === 0) throw nameUnknown(repository);
      throw manifestUnknown(repository, digest);
    }
    if (rec) {
      await this.records.update(repo.name, (r) => {
        delete r.manifests[digest];
        for (const [t, d] of Object.entries(r.tags)) if (d === digest) delete r.tags[t];
        // other pushed manifests of the same image go too: the image leaves the repository
        if (storeId) {
          for (const [d, e] of Object.entries(r.manifests)) if (e.image === storeId) delete r.manifests[d];
          for (const [t, d] of Object.entries(r.tags)) if (!r.manifests[d]) delete r.tags[t];
        }
      });
    }
    if (storeId) await this.images.untagImage(repo.name, storeId);
  }

  async deleteTag(repository: string, tag: string): Promise<void> {
    const repo = storeRepository(repository);
    const rec = await this.records.get(repo.name);
    const id = await this.images.tagged(repo.name, tag);
    if (!id && rec?.tags[tag] === undefined) {
      if (!rec && (await this.images.references(repo.name)).length === 0) throw nameUnknown(repository);
      throw manifestUnknown(repository, tag);
    }
    if (rec?.tags[tag] !== undefined) {
      await this.records.update(repo.name, (r) => {
        delete r.tags[tag];
      });
    }
    if (id) await this.store.references.untag(`${repo.name}:${tag}`).catch(() => {});
  }

  async listTags(repository: string, req: PageRequest): Promise<Page<string>> {
    const repo = storeRepository(repository);
    const rec = await this.records.get(repo.name);
    const refs = await this.images.references(repo.name);
    if (!rec && refs.length === 0) throw nameUnknown(repository);
    const tags = new Set<string>();
    for (const r of refs) if (r.tag !== undefined) tags.add(r.tag);
    for (const [t, d] of Object.entries(rec?.tags ?? {})) if (!rec!.manifests[d]?.image) tags.add(t);
    return page([...tags].sort(compareTags), req, compareTags, req.last);
  }

  async listReferrers(repository: string, digest: Digest, req: ReferrersRequest): Promise<ReferrersResult> {
    const rec = await this.records.get(storeRepository(repository).name);
    const found = Object.entries(rec?.manifests ?? {}).filter(([, e]) => e.subject === digest);
    const filtered = req.artifactType === undefined ? found : found.filter(([, e]) => e.artifactType === req.artifactType);
    return {
      manifests: filtered.map(([d, e]) => ({
        mediaType: e.mediaType,
        digest: d as Digest,
        size: e.size,
        ...(e.artifactType ? { artifactType: e.artifactType } : {}),
        ...(e.annotations ? { annotations: e.annotations } : {}),
      })),
      filtersApplied: req.artifactType === undefined ? [] : ["artifactType"],
    };
  }

  async listRepositories(req: PageRequest, visible: (repository: string) => boolean): Promise<Page<string>> {
    const names = new Set<string>();
    for (const n of await this.images.names()) names.add(n);
    for (const rec of await this.records.all()) names.add(rec.name);
    const out = new Set<string>();
    for (const n of names) {
      const r = registryName(n);
      if (r !== undefined && visible(r)) out.add(r);
    }
    return page([...out].sort(byteOrder), req, byteOrder, req.last);
  }

  // ---- upkeep ----

  /**
   * Discard idle upload sessions, and forget blobs pushed longer than the
   * grace period ago that no manifest names and manifests of images the store
   * no longer has (the next GC then frees what nothing else keeps).
   */
  async sweep(now = Date.now()): Promise<void> {
    await this.uploads.sweep(now);
    for (const rec of await this.records.all()) {
      const stale = Object.entries(rec.blobs).filter(([d, at]) => now - at > this.blobGraceMs && !Object.values(rec.manifests).some((e) => e.refs.includes(d as Digest)));
      const tombstones = Object.entries(rec.deleted ?? {}).filter(([, at]) => now - at > this.blobGraceMs);
      const gone: string[] = [];
      for (const [d, e] of Object.entries(rec.manifests)) if (e.image && !(await this.store.images.has(e.image))) gone.push(d);
      if (stale.length === 0 && gone.length === 0 && tombstones.length === 0) continue;
      await this.records.update(rec.name, (r) => {
        for (const [d] of stale) delete r.blobs[d];
        for (const [d] of tombstones) delete r.deleted?.[d];
        for (const d of gone) delete r.manifests[d];
        for (const [t, d] of Object.entries(r.tags)) if (!r.manifests[d]) delete r.tags[t];
      });
    }
  }

  /** Discard every upload session (the store stays open: its owner closes it). */
  close(): Promise<void> {
    return this.uploads.close();
  }
}
