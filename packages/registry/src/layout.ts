/**
 * An OCI image layout directory (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`)
 * as a place to pull into and push from — what `skopeo copy oci:<dir>:<ref>`
 * and umoci read and write.
 *
 * Blob writes are crash-safe and resumable: bytes go to
 * `.partial/<alg>-<hex>` (appended, hashed as they come), and only a blob
 * whose size and digest match is fsynced and renamed into `blobs/` (then the
 * directory is fsynced). A killed pull leaves its partial file; the next
 * write of that blob re-hashes it and asks the source only for the rest.
 * A partial file whose content turns out wrong is deleted. Partial files
 * nobody came back for in 24 hours are removed when the layout is opened.
 * `index.json` is replaced atomically.
 * @module
 */
import { randomBytes } from "node:crypto";
import { createReadStream, promises as fsp } from "node:fs";
import path from "node:path";
import { DataIntegrityError, type Digest, digestAlgorithm, digestHex, FailedPreconditionError, NotFoundError, parseDigest, sha256 } from "@berth/digest";
import { ANNOTATION_REF_NAME, type Descriptor, INDEX_MEDIA_TYPES, MEDIA_TYPE_OCI_INDEX, OCI_LAYOUT_VERSION, type OciIndex, parseIndex } from "@berth/oci";
import { abortedError, REGISTRY_ERROR_CODES } from "./errors.js";
import { type BlobDescriptor, verifyBytes, verifyStream } from "./verify.js";

/** Where partial blobs wait, inside the layout. */
export const PARTIAL_DIR = ".partial";
/** Age after which an abandoned partial blob is garbage. */
export const PARTIAL_MAX_AGE_MS = 24 * 3600_000;

/** What {@link OciLayout.writeBlob} did. */
export interface LayoutWriteResult {
  status: "exists" | "written";
  /** Bytes asked of the source (0 when the blob was there). */
  bytes: number;
  /** Bytes that were already in the partial file. */
  resumedFrom: number;
}

/** Options of {@link OciLayout.writeBlob}. */
export interface LayoutWriteOptions {
  signal?: AbortSignal;
  /** Running count of the blob's bytes on disk (resumed ones included). */
  onProgress?(bytes: number): void;
}

function layoutError(dir: string, why: string, cause?: unknown): FailedPreconditionError {
  return new FailedPreconditionError(`OCI layout ${dir}: ${why}`, { code: REGISTRY_ERROR_CODES.LAYOUT_INVALID, ...(cause !== undefined ? { cause } : {}) });
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  const fh = await fsp.open(tmp, "wx", 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  await fsyncDir(path.dirname(file));
}

/** An OCI image layout on disk. */
export class OciLayout {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * Open a layout; with `create`, make the directory, `oci-layout` and an
   * empty `index.json` when missing. Removes abandoned partial blobs.
   * @throws FailedPreconditionError `ERR_LAYOUT_INVALID` when `dir` is no OCI layout (and `create` is false)
   */
  static async open(dir: string, options: { create?: boolean } = {}): Promise<OciLayout> {
    const layout = new OciLayout(path.resolve(dir));
    const marker = path.join(layout.dir, "oci-layout");
    let text: string | undefined;
    try {
      text = await fsp.readFile(marker, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    if (text === undefined) {
      if (!options.create) throw layoutError(layout.dir, "no oci-layout file");
      await fsp.mkdir(path.join(layout.dir, "blobs", "sha256"), { recursive: true });
      await writeAtomic(marker, `${JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION })}\n`);
    } else {
      let v: { imageLayoutVersion?: unknown };
      try {
        v = JSON.parse(text) as { imageLayoutVersion?: unknown };
      } catch (cause) {
        throw layoutError(layout.dir, "oci-layout is not JSON", cause);
      }
      if (typeof v?.imageLayoutVersion !== "string") throw layoutError(layout.dir, "oci-layout has no imageLayoutVersion");
    }
    const index = path.join(layout.dir, "index.json");
    try {
      await fsp.access(index);
    } catch {
      if (!options.create) throw layoutError(layout.dir, "no index.json");
      await writeAtomic(index, `${JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [] })}\n`);
    }
    await layout.removeStalePartials();
    return layout;
  }

  /** Path of a blob (from a validated digest only). */
  blobPath(digest: Digest | string): string {
    const d = parseDigest(digest);
    return path.join(this.dir, "blobs", digestAlgorithm(d), digestHex(d));
  }

  private partialPath(digest: Digest): string {
    return path.join(this.dir, PARTIAL_DIR, `${digestAlgorithm(digest)}-${digestHex(digest)}`);
  }

  private async removeStalePartials(): Promise<void> {
    const dir = path.join(this.dir, PARTIAL_DIR);
    const names = await fsp.readdir(dir).catch(() => [] as string[]);
    for (const n of names) {
      const p = path.join(dir, n);
      const st = await fsp.stat(p).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > PARTIAL_MAX_AGE_MS) await fsp.rm(p, { force: true });
    }
    // temp files of index.json writes that were killed before their rename
    for (const n of await fsp.readdir(this.dir).catch(() => [] as string[])) {
      if (/^index\.json\.[0-9a-f]{12}\.tmp$/.test(n)) {
        const p = path.join(this.dir, n);
        const st = await fsp.stat(p).catch(() => undefined);
        if (st && Date.now() - st.mtimeMs > 10 * 60_000) await fsp.rm(p, { force: true });
      }
    }
  }

  /** A blob's size, or undefined when the layout does not have it. */
  async blobSize(digest: Digest): Promise<number | undefined> {
    try {
      return (await fsp.stat(this.blobPath(digest))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  /** Size of the partial file of a blob (bytes a resumed write would not ask for again). */
  async partialSize(digest: Digest): Promise<number> {
    return (await fsp.stat(this.partialPath(parseDigest(digest))).catch(() => undefined))?.size ?? 0;
  }

  /**
   * A blob's bytes from `offset` (unverified: the destination verifies).
   * @throws NotFoundError `ERR_BLOB_NOT_FOUND`
   */
  async *blobChunks(digest: Digest, offset = 0): AsyncGenerator<Uint8Array> {
    const p = this.blobPath(digest);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(p, "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        throw new NotFoundError(`blob ${digest} not found in OCI layout ${this.dir}`, { code: REGISTRY_ERROR_CODES.BLOB_NOT_FOUND, details: { digest } });
      }
      throw err;
    }
    try {
      yield* fh.createReadStream({ start: offset, highWaterMark: 1 << 20, autoClose: false }) as AsyncIterable<Buffer>;
    } finally {
      await fh.close();
    }
  }

  /**
   * A small blob (a manifest, an index, a config), verified against `desc`.
   * @throws NotFoundError `ERR_BLOB_NOT_FOUND`; FailedPreconditionError `ERR_MANIFEST_TOO_LARGE`; DataIntegrityError
   */
  async readBlob(desc: { digest: Digest; size?: number }, maxSize: number): Promise<Uint8Array> {
    const size = await this.blobSize(desc.digest);
    if (size === undefined) {
      throw new NotFoundError(`blob ${desc.digest} not found in OCI layout ${this.dir}`, { code: REGISTRY_ERROR_CODES.BLOB_NOT_FOUND, details: { digest: desc.digest } });
    }
    if (size > maxSize) {
      throw new FailedPreconditionError(`blob ${desc.digest} in ${this.dir} is ${size} bytes, more than ${maxSize}`, { code: REGISTRY_ERROR_CODES.MANIFEST_TOO_LARGE });
    }
    const bytes = new Uint8Array(await fsp.readFile(this.blobPath(desc.digest)));
    verifyBytes(bytes, desc);
    return bytes;
  }

  /**
   * Store a blob from a source that can start at any offset, resuming from
   * the partial file and verifying the whole blob before it becomes visible.
   */
  async writeBlob(desc: BlobDescriptor, source: (offset: number) => AsyncIterable<Uint8Array>, options: LayoutWriteOptions = {}): Promise<LayoutWriteResult> {
    const digest = parseDigest(desc.digest);
    const final = this.blobPath(digest);
    if ((await this.blobSize(digest)) === desc.size) return { status: "exists", bytes: 0, resumedFrom: 0 };
    await fsp.mkdir(path.join(this.dir, PARTIAL_DIR), { recursive: true });
    await fsp.mkdir(path.dirname(final), { recursive: true });
    const partial = this.partialPath(digest);
    let offset = await this.partialSize(digest);
    if (offset > desc.size) {
      await fsp.truncate(partial, 0);
      offset = 0;
    }
    const hasher = sha256.create();
    if (offset > 0) {
      for await (const c of createReadStream(partial, { highWaterMark: 1 << 20, end: offset - 1 })) hasher.update(c as Buffer);
    }
    const resumedFrom = offset;
    let got = offset;
    const verified = verifyStream(offset < desc.size ? source(offset) : (async function* () {})(), desc, {
      hasher,
      offset,
      onProgress: (n) => {
        got = n;
        options.onProgress?.(n);
      },
    });
    // Chunks are appended in writes of up to 256 KiB; on any failure what was
    // received is written out first, so a resumed write asks only for the rest
    // (a SIGKILL loses at most the batch in memory).
    const fh = await fsp.open(partial, "a");
    const pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const drain = async () => {
      if (pendingBytes === 0) return;
      const bufs = pending.splice(0);
      pendingBytes = 0;
      await fh.writev(bufs); // no copy into one buffer
    };
    try {
      for await (const chunk of verified) {
        if (options.signal?.aborted) throw abortedError(`write of ${digest} into ${this.dir}`, options.signal.reason);
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= 256 << 10) await drain();
      }
      await drain();
      await fh.sync();
    } catch (err) {
      if (err instanceof DataIntegrityError) {
        await fh.close();
        await fsp.rm(partial, { force: true });
        throw err;
      }
      await drain().catch(() => undefined);
      await fh.close();
      throw err;
    }
    await fh.close();
    await fsp.rename(partial, final);
    await fsyncDir(path.dirname(final));
    return { status: "written", bytes: got - resumedFrom, resumedFrom };
  }

  /** Store a small blob (manifest, config) from bytes. */
  async writeBytes(bytes: Uint8Array): Promise<Digest> {
    const digest = sha256(bytes);
    await this.writeBlob({ digest, size: bytes.length }, async function* () {
      yield bytes;
    });
    return digest;
  }

  /** The layout's `index.json`. @throws FailedPreconditionError `ERR_LAYOUT_INVALID` */
  async readIndex(): Promise<OciIndex> {
    const file = path.join(this.dir, "index.json");
    try {
      return parseIndex(await fsp.readFile(file), file);
    } catch (err) {
      if (err instanceof Error && "code" in err && (err as { code?: string }).code?.startsWith("ERR_")) throw layoutError(this.dir, (err as Error).message, err);
      throw err;
    }
  }

  /**
   * The descriptor a ref name points to (`org.opencontainers.image.ref.name`);
   * without a name, the only manifest of the index.
   * @throws NotFoundError `ERR_LAYOUT_REF_NOT_FOUND`
   */
  async resolve(refName?: string): Promise<Descriptor> {
    const index = await this.readIndex();
    const found = refName === undefined ? (index.manifests.length === 1 ? index.manifests : []) : index.manifests.filter((m) => m.annotations?.[ANNOTATION_REF_NAME] === refName);
    if (found.length === 0) {
      const what = refName === undefined ? `exactly one manifest (it has ${index.manifests.length}); name one` : `no manifest named ${JSON.stringify(refName)}`;
      throw new NotFoundError(`OCI layout ${this.dir}: ${what}`, { code: REGISTRY_ERROR_CODES.LAYOUT_REF_NOT_FOUND });
    }
    return found[found.length - 1]!;
  }

  /**
   * Point `refName` at `desc` in `index.json` (replacing what it named);
   * without a name, add the descriptor unless it is listed already.
   */
  async setRef(refName: string | undefined, desc: Descriptor): Promise<void> {
    const index = await this.readIndex();
    const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
    if (desc.platform && !INDEX_MEDIA_TYPES.has(desc.mediaType)) entry.platform = desc.platform;
    if (desc.artifactType) entry.artifactType = desc.artifactType;
    let manifests: Descriptor[];
    if (refName !== undefined) {
      entry.annotations = { [ANNOTATION_REF_NAME]: refName };
      manifests = [...index.manifests.filter((m) => m.annotations?.[ANNOTATION_REF_NAME] !== refName), entry];
    } else {
      manifests = index.manifests.some((m) => m.digest === desc.digest && !m.annotations?.[ANNOTATION_REF_NAME]) ? index.manifests : [...index.manifests, entry];
    }
    await writeAtomic(path.join(this.dir, "index.json"), `${JSON.stringify({ ...index, schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests })}\n`);
  }
}
