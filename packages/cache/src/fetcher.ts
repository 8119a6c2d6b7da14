/**
 * Where cache blobs come from: an OCI layout directory, an OCI layout tar, or
 * a berth content store. A registry fetcher can implement the same interface.
 * @module
 */
import { createReadStream, promises as fsp } from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { type Digest, DigestMismatchError, digestHex, FailedPreconditionError, InvalidArgumentError, NotFoundError, parseDigest, SizeMismatchError, sha256 } from "@berth/digest";
import type { ContentProvider } from "@berth/layer-store";
import { CacheErrorCode } from "./errors.js";

/** A blob reference: digest and (when known) size. */
export interface BlobRef {
  digest: Digest | string;
  size?: number;
}

/** Reads blobs by descriptor (local layout now, a registry later). */
export interface Fetcher {
  /** A stream of the blob's bytes (the caller verifies them). @throws NotFoundError `ERR_BLOB_NOT_FOUND` */
  fetch(desc: BlobRef): Promise<Readable>;
  /** A small document, verified against digest and size. @throws FailedPreconditionError `ERR_BLOB_TOO_LARGE` */
  readBytes(desc: BlobRef, maxSize: number): Promise<Uint8Array>;
  /** The layout's `index.json` (a layout-backed fetcher), if it has one. */
  index?(): Promise<Uint8Array>;
}

function blobNotFound(d: string, where: string): NotFoundError {
  return new NotFoundError(`blob ${d} not found in ${where}`, { code: CacheErrorCode.BLOB_NOT_FOUND, details: { digest: d } });
}

async function readAll(r: Readable, max: number, d: string): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of r) {
    n += (c as Buffer).length;
    if (n > max) {
      r.destroy();
      throw new FailedPreconditionError(`blob ${d} is larger than ${max} bytes`, { code: CacheErrorCode.BLOB_TOO_LARGE, details: { digest: d } });
    }
    chunks.push(c as Buffer);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

/** Verify that `bytes` are the blob `desc` names. */
export function verifyBytes(bytes: Uint8Array, desc: BlobRef): Uint8Array {
  const want = parseDigest(desc.digest);
  if (desc.size !== undefined && bytes.length !== desc.size) {
    throw new SizeMismatchError(`blob ${want}: expected ${desc.size} bytes, got ${bytes.length}`, { details: { digest: want } });
  }
  const got = sha256(bytes);
  if (got !== want) throw new DigestMismatchError(`blob ${want}: content hashes to ${got}`, { details: { digest: want, actual: got } });
  return bytes;
}

async function verifiedRead(f: Pick<Fetcher, "fetch">, desc: BlobRef, maxSize: number): Promise<Uint8Array> {
  if (desc.size !== undefined && desc.size > maxSize) {
    throw new FailedPreconditionError(`blob ${desc.digest} is larger than ${maxSize} bytes`, { code: CacheErrorCode.BLOB_TOO_LARGE });
  }
  return verifyBytes(await readAll(await f.fetch(desc), maxSize, String(desc.digest)), desc);
}

/** Blobs of an OCI image layout directory (`blobs/<alg>/<hex>`, `index.json`). */
export function layoutDirFetcher(dir: string): Fetcher {
  const blobPath = (d: string) => {
    const dg = parseDigest(d); // never build a path from an unvalidated digest
    return path.join(dir, "blobs", dg.slice(0, dg.indexOf(":")), digestHex(dg));
  };
  const f: Fetcher = {
    async fetch(desc) {
      const p = blobPath(String(desc.digest));
      try {
        await fsp.access(p);
      } catch {
        throw blobNotFound(String(desc.digest), dir);
      }
      return createReadStream(p);
    },
    readBytes: (desc, max) => verifiedRead(f, desc, max),
    async index() {
      try {
        return new Uint8Array(await fsp.readFile(path.join(dir, "index.json")));
      } catch (err) {
        throw new NotFoundError(`${dir} is not an OCI layout: no index.json`, { code: CacheErrorCode.NOT_OCI_LAYOUT, cause: err });
      }
    },
  };
  return f;
}

export interface TarEntry {
  offset: number;
  size: number;
}

function parseOctal(buf: Buffer, off: number, len: number): number {
  const field = buf.subarray(off, off + len);
  if ((field[0] as number) & 0x80) {
    // base-256 (GNU) encoding for large sizes
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + (field[i] as number);
    return n;
  }
  const s = field.toString("latin1").replace(/\0.*$/s, "").trim();
  return s === "" ? 0 : Number.parseInt(s, 8);
}

function cstr(buf: Buffer, off: number, len: number): string {
  const s = buf.subarray(off, off + len);
  const z = s.indexOf(0);
  return s.subarray(0, z === -1 ? s.length : z).toString("utf8");
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp === -1) break;
    const len = Number.parseInt(data.subarray(pos, sp).toString("latin1"), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const rec = data.subarray(sp + 1, pos + len - 1).toString("utf8");
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    pos += len;
  }
  return out;
}

/**
 * Index the regular files of a tar by name without reading their data: header
 * after header, seeking over contents (PAX `path` and GNU long names honoured).
 */
export async function indexTar(file: string): Promise<Map<string, TarEntry>> {
  const fh = await fsp.open(file, "r");
  const entries = new Map<string, TarEntry>();
  try {
    const { size: total } = await fh.stat();
    const hdr = Buffer.alloc(512);
    let pos = 0;
    let longName: string | undefined;
    let paxPath: string | undefined;
    while (pos + 512 <= total) {
      const { bytesRead } = await fh.read(hdr, 0, 512, pos);
      if (bytesRead < 512) break;
      if (hdr.every((b) => b === 0)) break;
      const size = parseOctal(hdr, 124, 12);
      const type = String.fromCharCode(hdr[156] as number);
      const dataAt = pos + 512;
      const next = dataAt + Math.ceil(size / 512) * 512;
      if (dataAt + size > total) {
        throw new InvalidArgumentError(`${file}: truncated tar entry at offset ${pos}`, { code: CacheErrorCode.TRUNCATED_ARCHIVE });
      }
      if (type === "x" || type === "L") {
        if (size > 1 << 20) throw new InvalidArgumentError(`${file}: oversize tar header at ${pos}`, { code: CacheErrorCode.INVALID_ARCHIVE });
        const data = Buffer.alloc(size);
        await fh.read(data, 0, size, dataAt);
        if (type === "x") paxPath = parsePax(data).path ?? paxPath;
        else longName = data.toString("utf8").replace(/\0+$/, "");
      } else if (type === "g") {
        // global PAX header: nothing we need
      } else {
        let name = paxPath ?? longName;
        if (name === undefined) {
          const prefix = cstr(hdr, 345, 155);
          const base = cstr(hdr, 0, 100);
          name = prefix ? `${prefix}/${base}` : base;
        }
        paxPath = undefined;
        longName = undefined;
        if (type === "0" || type === "\0") {
          const norm = path.posix.normalize(name.replace(/^\.\//, ""));
          if (norm.startsWith("../") || norm.startsWith("/")) {
            throw new InvalidArgumentError(`${file}: unsafe path ${JSON.stringify(name)}`, { code: CacheErrorCode.UNSAFE_PATH });
          }
          if (entries.has(norm)) throw new InvalidArgumentError(`${file}: duplicate entry ${norm}`, { code: CacheErrorCode.DUPLICATE_ENTRY });
          entries.set(norm, { offset: dataAt, size });
        }
      }
      pos = next;
    }
  } finally {
    await fh.close();
  }
  return entries;
}

/** Blobs of an OCI layout packed in a tar (`oci-archive`, BuildKit `type=oci`), read in place. */
export async function layoutTarFetcher(file: string): Promise<Fetcher> {
  const entries = await indexTar(file);
  const open = (name: string) => {
    const e = entries.get(name);
    if (!e) return undefined;
    return e.size === 0 ? createReadStream(file, { start: 1, end: 0 }) : createReadStream(file, { start: e.offset, end: e.offset + e.size - 1 });
  };
  const f: Fetcher = {
    async fetch(desc) {
      const d = parseDigest(desc.digest);
      const s = open(`blobs/${d.slice(0, d.indexOf(":"))}/${digestHex(d)}`);
      if (!s) throw blobNotFound(d, file);
      return s;
    },
    readBytes: (desc, max) => verifiedRead(f, desc, max),
    async index() {
      const s = open("index.json");
      if (!s) throw new NotFoundError(`${file} is not an OCI layout archive: no index.json`, { code: CacheErrorCode.NOT_OCI_LAYOUT });
      return readAll(s, 4 << 20, "index.json");
    },
  };
  return f;
}

/** Blobs of a berth content store. */
export function contentStoreFetcher(content: ContentProvider): Fetcher {
  const f: Fetcher = {
    fetch: (desc) => content.open(desc.digest),
    readBytes: async (desc, max) => verifyBytes(await content.readBytes(desc.digest, max), desc),
  };
  return f;
}

/** A fetcher for a path: an OCI layout directory or an OCI layout tar. */
export async function openLayout(p: string): Promise<Fetcher> {
  const st = await fsp.stat(p).catch((err) => {
    throw new NotFoundError(`cache source ${p} not found`, { code: CacheErrorCode.CACHE_SOURCE_NOT_FOUND, cause: err });
  });
  return st.isDirectory() ? layoutDirFetcher(p) : layoutTarFetcher(p);
}
