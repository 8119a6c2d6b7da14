/**
 * A minimal in-memory RegistryBackend: a TEST DOUBLE, never shipped. It lets
 * the HTTP layer's tests run without a store (the conformance tests run it
 * beside `StoreRegistryBackend`, the real one). It keeps the contract of
 * `src/registry/backend.ts` (membership per repository, byte-for-byte
 * manifests, referrers by subject, sorted pages, resumable uploads), simply
 * and without persistence.
 */
import { createHash, randomUUID } from "node:crypto";
import {
  type Digest,
  DigestMismatchError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  digestAlgorithm,
  parseDigest,
} from "@berth/digest";
import {
  type Descriptor,
  INDEX_MEDIA_TYPES,
  MANIFEST_MEDIA_TYPES,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  parseJsonObject,
  validateIndex,
  validateManifest,
} from "@berth/oci";
import {
  type AppendRequest,
  type BlobInfo,
  type BlobReader,
  type BlobScope,
  type ManifestRef,
  type MountRequest,
  type Page,
  type PageRequest,
  type PutManifestRequest,
  type PutManifestResult,
  REGISTRY_ERROR_CODES as C,
  type ReferrersResult,
  type RegistryBackend,
  type StoredManifest,
  type UploadStatus,
  compareTags,
} from "../src/registry/backend.js";

interface ManifestRecord extends StoredManifest {
  subject?: Digest;
  artifactType?: string;
  annotations?: Record<string, string>;
}

interface Repo {
  manifests: Map<string, ManifestRecord>;
  tags: Map<string, Digest>;
  blobs: Set<string>;
}

interface Upload {
  repository: string;
  chunks: Buffer[];
  offset: number;
  busy: boolean;
}

function hashOf(algorithm: string, bytes: Uint8Array): Digest {
  return parseDigest(`${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`);
}

function page<T>(sorted: T[], req: PageRequest, cmp: (a: T, b: T) => number, lastOf: (s: string) => T): Page<T> {
  const from = req.last === undefined ? sorted : sorted.filter((x) => cmp(x, lastOf(req.last!)) > 0);
  return { items: from.slice(0, req.limit), more: from.length > req.limit };
}

/** The in-memory backend (test double). */
export class MemoryBackend implements RegistryBackend {
  readonly blobs = new Map<string, Uint8Array>();
  readonly repos = new Map<string, Repo>();
  readonly uploads = new Map<string, Upload>();

  private repo(name: string, create = false): Repo | undefined {
    let r = this.repos.get(name);
    if (!r && create) {
      r = { manifests: new Map(), tags: new Map(), blobs: new Set() };
      this.repos.set(name, r);
    }
    return r;
  }

  private visible(scope: BlobScope, digest: Digest): Uint8Array {
    const bytes = this.blobs.get(digest);
    const member = this.repo(scope.repository)?.blobs.has(digest) ?? false;
    if (!bytes || (scope.membersOnly && !member)) {
      throw new NotFoundError(`blob ${digest} unknown to repository ${scope.repository}`, { code: C.blobUnknown, details: { digest } });
    }
    return bytes;
  }

  async statBlob(scope: BlobScope, digest: Digest): Promise<BlobInfo> {
    return { digest, size: this.visible(scope, digest).byteLength };
  }

  async openBlob(scope: BlobScope, digest: Digest): Promise<BlobReader> {
    const bytes = this.visible(scope, digest);
    return {
      digest,
      size: bytes.byteLength,
      async read(into, position) {
        const n = Math.max(0, Math.min(into.byteLength, bytes.byteLength - position));
        into.set(bytes.subarray(position, position + n));
        return n;
      },
      async close() {},
    };
  }

  async deleteBlob(scope: BlobScope, digest: Digest): Promise<void> {
    const repo = this.repo(scope.repository);
    if (!repo?.blobs.has(digest)) throw new NotFoundError(`blob ${digest} unknown to repository ${scope.repository}`, { code: C.blobUnknown });
    repo.blobs.delete(digest);
    if (![...this.repos.values()].some((r) => r.blobs.has(digest))) this.blobs.delete(digest);
  }

  async mountBlob(repository: string, digest: Digest, request: MountRequest): Promise<BlobInfo | undefined> {
    const bytes = this.blobs.get(digest);
    if (!bytes) return undefined;
    const holders = [...this.repos.entries()].filter(([name, r]) => r.blobs.has(digest) && request.readable(name)).map(([name]) => name);
    if (holders.length === 0) return undefined;
    this.repo(repository, true)!.blobs.add(digest);
    return { digest, size: bytes.byteLength };
  }

  async createUpload(repository: string): Promise<UploadStatus> {
    const id = randomUUID();
    this.uploads.set(id, { repository, chunks: [], offset: 0, busy: false });
    return { id, offset: 0 };
  }

  private session(repository: string, id: string): Upload {
    const u = this.uploads.get(id);
    if (!u || u.repository !== repository) throw new NotFoundError(`blob upload ${id} unknown`, { code: C.uploadUnknown });
    return u;
  }

  async getUpload(repository: string, id: string): Promise<UploadStatus> {
    return { id, offset: this.session(repository, id).offset };
  }

  async appendUpload(repository: string, id: string, chunk: AppendRequest): Promise<UploadStatus> {
    const u = this.session(repository, id);
    if (u.busy || (chunk.start !== undefined && chunk.start !== u.offset)) {
      throw new FailedPreconditionError(`chunk starts at ${chunk.start ?? "?"} but upload ${id} is at ${u.offset}`, {
        code: C.uploadOffset,
        details: { offset: u.offset },
      });
    }
    u.busy = true;
    try {
      for await (const c of chunk.body) {
        u.chunks.push(Buffer.from(c));
        u.offset += c.byteLength;
      }
    } finally {
      u.busy = false;
    }
    return { id, offset: u.offset };
  }

  async commitUpload(repository: string, id: string, digest: Digest): Promise<BlobInfo> {
    const u = this.session(repository, id);
    this.uploads.delete(id);
    const bytes = Buffer.concat(u.chunks);
    const actual = hashOf(digestAlgorithm(digest), bytes);
    if (actual !== digest) throw new DigestMismatchError(`upload ${id} has digest ${actual}, not ${digest}`, { details: { digest } });
    this.blobs.set(digest, bytes);
    this.repo(repository, true)!.blobs.add(digest);
    return { digest, size: bytes.byteLength };
  }

  async cancelUpload(repository: string, id: string): Promise<void> {
    this.session(repository, id);
    this.uploads.delete(id);
  }

  async getManifest(repository: string, reference: ManifestRef): Promise<StoredManifest> {
    const repo = this.repo(repository);
    const digest = reference.digest ?? repo?.tags.get(reference.tag);
    const m = digest && repo?.manifests.get(digest);
    if (!m) throw new NotFoundError(`manifest unknown: ${repository} ${reference.tag ?? reference.digest}`, { code: C.manifestUnknown });
    return m;
  }

  async putManifest(repository: string, request: PutManifestRequest): Promise<PutManifestResult> {
    const doc = parseJsonObject(request.content, "manifest");
    const field = typeof doc.mediaType === "string" ? doc.mediaType : undefined;
    if (field && request.contentType && field !== request.contentType) {
      throw new InvalidArgumentError(`manifest mediaType ${field} differs from Content-Type ${request.contentType}`, { code: C.manifestInvalid });
    }
    const mediaType = field ?? request.contentType ?? (Array.isArray(doc.manifests) ? MEDIA_TYPE_OCI_INDEX : MEDIA_TYPE_OCI_MANIFEST);
    const repo = this.repo(repository, true)!;
    const needed: Descriptor[] = [];
    let subject: Descriptor | undefined;
    let artifactType: string | undefined;
    if (MANIFEST_MEDIA_TYPES.has(mediaType)) {
      const m = validateManifest(doc);
      needed.push(m.config, ...m.layers);
      subject = m.subject;
      artifactType = m.artifactType ?? m.config.mediaType;
    } else if (INDEX_MEDIA_TYPES.has(mediaType)) {
      const i = validateIndex(doc);
      needed.push(...i.manifests);
      subject = i.subject;
      artifactType = i.artifactType;
    } else {
      throw new InvalidArgumentError(`manifest media type ${mediaType} is not supported`, { code: C.manifestInvalid });
    }
    for (const d of needed) {
      if (!repo.blobs.has(d.digest) && !repo.manifests.has(d.digest)) {
        throw new InvalidArgumentError(`manifest refers to ${d.digest}, unknown to ${repository}`, { code: C.manifestBlobUnknown, details: { digest: d.digest } });
      }
    }
    const algorithm = request.reference.digest ? digestAlgorithm(request.reference.digest) : "sha256";
    const digest = hashOf(algorithm, request.content);
    if (request.reference.digest && request.reference.digest !== digest) {
      throw new DigestMismatchError(`manifest has digest ${digest}, not ${request.reference.digest}`);
    }
    const annotations = doc.annotations as Record<string, string> | undefined;
    repo.manifests.set(digest, {
      digest,
      mediaType,
      content: new Uint8Array(request.content),
      ...(subject ? { subject: subject.digest } : {}),
      ...(artifactType ? { artifactType } : {}),
      ...(annotations ? { annotations } : {}),
    });
    if (request.reference.tag) repo.tags.set(request.reference.tag, digest);
    return subject ? { digest, subject: subject.digest } : { digest };
  }

  async deleteManifest(repository: string, digest: Digest): Promise<void> {
    const repo = this.repo(repository);
    if (!repo) throw new NotFoundError(`repository ${repository} unknown`, { code: C.nameUnknown });
    if (!repo.manifests.delete(digest)) throw new NotFoundError(`manifest ${digest} unknown`, { code: C.manifestUnknown });
    for (const [tag, d] of repo.tags) if (d === digest) repo.tags.delete(tag);
  }

  async deleteTag(repository: string, tag: string): Promise<void> {
    const repo = this.repo(repository);
    if (!repo) throw new NotFoundError(`repository ${repository} unknown`, { code: C.nameUnknown });
    if (!repo.tags.delete(tag)) throw new NotFoundError(`tag ${tag} unknown`, { code: C.manifestUnknown });
  }

  async listTags(repository: string, req: PageRequest): Promise<Page<string>> {
    const repo = this.repo(repository);
    if (!repo) throw new NotFoundError(`repository ${repository} unknown`, { code: C.nameUnknown });
    return page([...repo.tags.keys()].sort(compareTags), req, compareTags, (s) => s);
  }

  async listReferrers(repository: string, digest: Digest, req: { artifactType?: string }): Promise<ReferrersResult> {
    const found = [...(this.repo(repository)?.manifests.values() ?? [])].filter((m) => m.subject === digest);
    const filtered = req.artifactType === undefined ? found : found.filter((m) => m.artifactType === req.artifactType);
    return {
      manifests: filtered.map((m) => ({
        mediaType: m.mediaType,
        digest: m.digest,
        size: m.content.byteLength,
        ...(m.artifactType ? { artifactType: m.artifactType } : {}),
        ...(m.annotations ? { annotations: m.annotations } : {}),
      })),
      filtersApplied: req.artifactType === undefined ? [] : ["artifactType"],
    };
  }

  async listRepositories(req: PageRequest, visible: (r: string) => boolean): Promise<Page<string>> {
    const byte = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    return page([...this.repos.keys()].filter(visible).sort(byte), req, byte, (s) => s);
  }
}
