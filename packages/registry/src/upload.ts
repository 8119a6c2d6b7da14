/**
 * Putting a blob into a repository (go-containerregistry `remote/write.go`,
 * the Distribution spec's push workflow):
 *
 * 1. `HEAD` the blob — present: done, nothing sent;
 * 2. `POST …/blobs/uploads/?mount=<digest>&from=<repo>` for each repository
 *    of the same registry the blob is known in (201: mounted, nothing sent;
 *    202: the registry opened an upload session instead, which is used);
 * 3. otherwise `POST …/blobs/uploads/` and either one `PUT <location>&digest=`
 *    with the whole body (monolithic, the default: two requests), or, with
 *    `chunkSize`, `PATCH` chunks with `Content-Range` of at least the
 *    registry's `OCI-Chunk-Min-Length`, then `PUT …&digest=`.
 *
 * {@link uploadStream} sends bytes whose digest is not known yet (a layer
 * compressed as it goes): `POST`, one streamed `PATCH` (chunked, no
 * `Content-Range`: the spec's streamed upload), then `PUT …&digest=` with the
 * digest the bytes hashed to — one pass, no temp file, as `docker push` does.
 *
 * The bytes are hashed as they are sent: a source that is not what its
 * descriptor says fails the upload with a DataIntegrityError before the
 * registry commits it, and the session is cancelled. A failed upload's session
 * is cancelled (`DELETE`) so the registry keeps no garbage from it.
 * @module
 */
import { Readable } from "node:stream";
import { type Digest, parseDigest, sha256 } from "@berth/digest";
import { protocolError } from "./errors.js";
import type { CallOptions, Repository } from "./repository.js";
import { discard, header } from "./transport/types.js";
import { type BlobDescriptor, verifyStream } from "./verify.js";

/** Options of {@link uploadBlob}. */
export interface UploadOptions extends CallOptions {
  /** Repositories (paths, same registry) to try a cross-repository mount from, best first. At most 3 are tried. */
  mountFrom?: readonly string[];
  /** Upload in chunks of this many bytes (PATCH with Content-Range) instead of one PUT. */
  chunkSize?: number;
  /** Bytes sent so far. */
  onProgress?(bytes: number): void;
}

/** What {@link uploadBlob} did. */
export interface UploadResult {
  /** `exists`: the HEAD found it; `mounted`: a cross-repository mount; `uploaded`: the bytes were sent. */
  status: "exists" | "mounted" | "uploaded";
  /** The repository it was mounted from. */
  mountedFrom?: string;
  /** Bytes sent. */
  bytes: number;
}

/** A blob's source: its bytes from an offset (a thunk, so a retry can reopen it). */
export type BlobSource = (offset: number) => AsyncIterable<Uint8Array>;

interface Session {
  location: URL;
  minChunk: number;
}

async function sessionFrom(repo: Repository, res: Awaited<ReturnType<Repository["send"]>>, what: string): Promise<Session> {
  const loc = header(res, "location");
  await discard(res);
  if (!loc) throw protocolError(`${what} (${repo.name}): 202 without Location`);
  const min = Number(header(res, "oci-chunk-min-length") ?? 0);
  return { location: await repo.url(loc), minChunk: Number.isSafeInteger(min) && min > 0 ? min : 0 };
}

async function cancel(repo: Repository, s: Session, signal?: AbortSignal): Promise<void> {
  try {
    await discard(await repo.send("DELETE", s.location, signal ? { signal } : {}));
  } catch {
    // best effort: the registry purges abandoned sessions itself
  }
}

/** Split one byte stream into consecutive streams of `size` bytes (the last may be shorter). */
async function* chunked(source: AsyncIterator<Uint8Array>, size: number): AsyncGenerator<AsyncGenerator<Uint8Array>> {
  let carry: Uint8Array | undefined;
  let done = false;
  const pull = async (): Promise<Uint8Array | undefined> => {
    if (carry) {
      const c = carry;
      carry = undefined;
      return c;
    }
    if (done) return undefined;
    const r = await source.next();
    if (r.done) {
      done = true;
      return undefined;
    }
    return r.value;
  };
  for (;;) {
    const first = await pull();
    if (!first) return;
    carry = first;
    let sent = 0;
    // Gather at most `size` bytes lazily: the PATCH body pulls them as it sends.
    const body = (async function* () {
      while (sent < size) {
        const c = await pull();
        if (!c) return;
        const take = Math.min(c.length, size - sent);
        if (take < c.length) carry = c.subarray(take);
        sent += take;
        yield c.subarray(0, take);
      }
    })();
    yield body;
    // drain what the consumer did not read (a failed PATCH) so positions stay right
    for await (const _ of body) void _;
  }
}

/** Upload one blob as described in the module doc. */
export async function uploadBlob(repo: Repository, desc: BlobDescriptor, source: BlobSource, options: UploadOptions = {}): Promise<UploadResult> {
  parseDigest(desc.digest);
  const signal = options.signal;
  const call = signal ? { signal } : {};
  if (await repo.headBlob(desc.digest, call)) return { status: "exists", bytes: 0 };

  let session: Session | undefined;
  const candidates = (options.mountFrom ?? []).filter((r) => r !== repo.path).slice(0, 3);
  for (const [i, from] of candidates.entries()) {
    const url = await repo.url("blobs/uploads/", signal);
    url.searchParams.set("mount", desc.digest);
    url.searchParams.set("from", from);
    const res = await repo.send("POST", url, { ...call, scopes: [...repo.scopes(), `repository:${from}:pull`] });
    if (res.status === 201) {
      await discard(res);
      return { status: "mounted", mountedFrom: from, bytes: 0 };
    }
    if (res.status !== 202) {
      await discard(res);
      continue;
    }
    const s = await sessionFrom(repo, res, "mount");
    if (i < candidates.length - 1) await cancel(repo, s, signal);
    else session = s;
  }
  if (!session) {
    const res = await repo.send("POST", await repo.url("blobs/uploads/", signal), call);
    if (res.status !== 202) throw await repo.failure(res, `start upload of ${desc.digest}`);
    session = await sessionFrom(repo, res, "start upload");
  }

  let sent = 0;
  const progress = (n: number) => {
    sent = n;
    options.onProgress?.(n);
  };
  try {
    let location = session.location;
    // A registry's OCI-Chunk-Min-Length bounds chunks; a monolithic PUT has none.
    const chunkSize = options.chunkSize !== undefined ? Math.max(options.chunkSize, session.minChunk, 1) : 0;
    if (chunkSize > 0 && desc.size > 0) {
      const it = verifyStream(source(0), desc, { onProgress: progress })[Symbol.asyncIterator]();
      let start = 0;
      for await (const piece of chunked(it, chunkSize)) {
        const length = Math.min(chunkSize, desc.size - start);
        if (length <= 0) break;
        const res = await repo.send("PATCH", location, {
          ...call,
          headers: {
            "content-type": "application/octet-stream",
            "content-range": `${start}-${start + length - 1}`,
          },
          body: { open: () => Readable.from(piece), length, replayable: false },
        });
        if (res.status !== 202) throw await repo.failure(res, `PATCH ${desc.digest} bytes ${start}-${start + length - 1}`);
        const next = header(res, "location");
        await discard(res);
        if (next) location = await repo.url(next);
        start += length;
      }
      // the verifier runs to its end only when pulled past the last byte
      while (!(await it.next()).done) {
        /* nothing left: this surfaces a size or digest mismatch */
      }
      const put = new URL(location);
      put.searchParams.set("digest", desc.digest);
      const res = await repo.send("PUT", put, call);
      if (res.status !== 201 && res.status !== 204) throw await repo.failure(res, `commit upload of ${desc.digest}`);
      await discard(res);
    } else {
      const put = new URL(location);
      put.searchParams.set("digest", desc.digest);
      const res = await repo.send("PUT", put, {
        ...call,
        headers: { "content-type": "application/octet-stream" },
        body: { open: () => Readable.from(verifyStream(source(0), desc, { onProgress: progress })), length: desc.size },
      });
      if (res.status !== 201 && res.status !== 204) throw await repo.failure(res, `upload of ${desc.digest}`);
      const said = header(res, "docker-content-digest");
      await discard(res);
      if (said && said !== desc.digest) throw protocolError(`upload of ${desc.digest} (${repo.name}): registry stored ${said}`);
    }
  } catch (err) {
    await cancel(repo, session, undefined);
    throw err;
  }
  return { status: "uploaded", bytes: sent };
}

/** Options of {@link uploadStream}. */
export interface UploadStreamOptions extends CallOptions {
  /** Bytes sent so far. */
  onProgress?(bytes: number): void;
}

/**
 * Upload bytes whose digest is learnt as they are sent (see the module doc);
 * resolves with what they hashed to. No HEAD and no mount: the caller did
 * those when it knew a digest. The session is cancelled on failure.
 */
export async function uploadStream(repo: Repository, source: AsyncIterable<Uint8Array>, options: UploadStreamOptions = {}): Promise<{ digest: Digest; size: number }> {
  const signal = options.signal;
  const call = signal ? { signal } : {};
  const res = await repo.send("POST", await repo.url("blobs/uploads/", signal), call);
  if (res.status !== 202) throw await repo.failure(res, "start upload");
  const session = await sessionFrom(repo, res, "start upload");
  const hasher = sha256.create();
  let size = 0;
  const hashed = async function* () {
    for await (const chunk of source) {
      hasher.update(chunk);
      size += chunk.length;
      options.onProgress?.(size);
      yield chunk;
    }
  };
  try {
    const patch = await repo.send("PATCH", session.location, {
      ...call,
      headers: { "content-type": "application/octet-stream" },
      body: { open: () => Readable.from(hashed()), replayable: false },
    });
    if (patch.status !== 202) throw await repo.failure(patch, "streamed upload");
    const next = header(patch, "location");
    await discard(patch);
    const digest = hasher.digest();
    const put = new URL(next ? await repo.url(next) : session.location);
    put.searchParams.set("digest", digest);
    const done = await repo.send("PUT", put, call);
    if (done.status !== 201 && done.status !== 204) throw await repo.failure(done, `commit upload of ${digest}`);
    const said = header(done, "docker-content-digest");
    await discard(done);
    if (said && said !== digest) throw protocolError(`upload of ${digest} (${repo.name}): registry stored ${said}`);
    return { digest, size };
  } catch (err) {
    await cancel(repo, session, undefined);
    throw err;
  } finally {
    hasher.destroy();
  }
}
