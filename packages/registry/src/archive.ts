/**
 * OCI archives — skopeo's `oci-archive:FILE[:REF]`: an OCI image layout as
 * one tar. As skopeo does, a copy reads one by unpacking it into a temporary
 * directory and writes one by filling a temporary layout, packed into FILE
 * when the copy is complete (a temp file beside it, fsynced, renamed): a
 * failed copy leaves no FILE and no half of one.
 *
 * The tar comes from strangers: only `oci-layout`, `index.json` and
 * `blobs/<algorithm>/<hex>` as regular files are taken (directory entries
 * are skipped); a link, a device, any other path (`..`, absolute, elsewhere)
 * or a member past the size limits fails with `ERR_INVALID_ARCHIVE` before
 * anything is read from the layout. Blobs are verified by the copy as it
 * reads them.
 * @module
 */
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { InvalidArgumentError } from "@berth/digest";
import { extract, pack } from "tar-stream";
import { REGISTRY_ERROR_CODES } from "./errors.js";

/** Largest `index.json` or `oci-layout` taken from an archive. */
const MAX_DOCUMENT = 4 << 20;
const MEMBER = /^(?:oci-layout|index\.json|blobs\/[a-z0-9]+\/[a-f0-9]{32,128})$/;

function invalid(file: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`${file}: not an OCI archive: ${why}`, { code: REGISTRY_ERROR_CODES.INVALID_ARCHIVE, details: { file } });
}

/** A new temp directory for an archive's layout; `remove()` deletes it. */
export async function tempLayoutDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await fsp.mkdtemp(path.join(tmpdir(), "berth-oci-archive-"));
  return { dir, remove: () => fsp.rm(dir, { recursive: true, force: true }) };
}

/**
 * Unpack the OCI archive `file` into the empty directory `dir` (see the module doc).
 * @throws InvalidArgumentError `ERR_INVALID_ARCHIVE`; ENOENT when `file` is missing
 */
export async function unpackOciArchive(file: string, dir: string): Promise<void> {
  const ex = extract();
  const seen = new Set<string>();
  ex.on("entry", (header, stream, next) => {
    void (async () => {
      const name = header.name.replace(/^\.\//, "").replace(/\/+$/, "");
      if (header.type === "directory" && (name === "" || name === "blobs" || /^blobs\/[a-z0-9]+$/.test(name))) {
        stream.resume();
        return;
      }
      if (header.type !== "file" || !MEMBER.test(name)) throw invalid(file, `member ${JSON.stringify(header.name.slice(0, 200))} (${header.type}) is not part of an OCI layout`);
      if (seen.has(name)) throw invalid(file, `member ${name} twice`);
      seen.add(name);
      if (!name.startsWith("blobs/") && (header.size ?? 0) > MAX_DOCUMENT) throw invalid(file, `${name} is larger than ${MAX_DOCUMENT} bytes`);
      const to = path.join(dir, ...name.split("/"));
      await fsp.mkdir(path.dirname(to), { recursive: true });
      await pipeline(stream, createWriteStream(to, { flags: "wx" }));
    })().then(
      () => next(),
      (err: unknown) => ex.destroy(err as Error),
    );
  });
  try {
    await pipeline(createReadStream(file), ex);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as { code?: string }).code === REGISTRY_ERROR_CODES.INVALID_ARCHIVE) throw err;
    throw invalid(file, (err as Error).message);
  }
  if (!seen.has("oci-layout") || !seen.has("index.json")) throw invalid(file, "no oci-layout or index.json");
}

/** Pack the OCI layout `dir` into `file`, atomically (a temp file beside it, fsynced, renamed). */
export async function packOciArchive(dir: string, file: string): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  const p = pack();
  const members: string[] = ["oci-layout", "index.json"];
  for (const alg of await fsp.readdir(path.join(dir, "blobs")).catch(() => [] as string[])) {
    for (const hex of (await fsp.readdir(path.join(dir, "blobs", alg))).sort()) members.push(`blobs/${alg}/${hex}`);
  }
  const written = pipeline(p, createWriteStream(tmp));
  try {
    for (const name of members) {
      const from = path.join(dir, ...name.split("/"));
      const st = await fsp.stat(from);
      const entry = p.entry({ name, size: st.size, mode: 0o644, mtime: new Date(0), type: "file" });
      await pipeline(createReadStream(from), entry);
    }
    p.finalize();
    await written;
    const fh = await fsp.open(tmp, "r+");
    await fh.sync();
    await fh.close();
    await fsp.rename(tmp, file);
  } catch (err) {
    p.destroy();
    await written.catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}
