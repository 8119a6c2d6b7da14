/**
 * Resumable pulls against the real docker-registry: a pull aborted half-way
 * leaves partial-download files, and the next pull asks the registry only for
 * the rest of the blob it was in and nothing of the blobs that were whole (the
 * access log's response bytes), storing the same image; a partial file with
 * the wrong bytes fails the pull as bad content and is removed, and the pull
 * after it starts from zero. Skips without the peer, fails under
 * BERTH_REQUIRE_PEERS=1.
 */
import { randomBytes } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { link, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type AccessLogEntry, type RegistryPeer, registry } from "@berth/peers";
import { afterAll, describe, expect, it } from "vitest";
import { PARTIAL_DIR } from "../src/partial.js";
import { freshService, tarStream } from "./helpers.js";

const reg = await registry();
afterAll(async () => {
  await reg?.stop();
});

/** Response bytes of the GETs of `digests` since `mark`. */
async function blobBytes(r: RegistryPeer, mark: number, digests: readonly string[]): Promise<number> {
  const log: AccessLogEntry[] = (await r.accessLog()).slice(mark);
  return log.filter((e) => e.method === "GET" && digests.some((d) => e.path.endsWith(`/blobs/${d}`))).reduce((n, e) => n + e.bytes, 0);
}

/** An image of one layer (`bytes` random bytes as hex text) pushed to `name` as a plain tar: its ID and layer descriptor. */
async function pushedImage(name: string, bytes: number) {
  const a = await freshService();
  const { id } = await a.svc.import(tarStream({ "data/file.txt": randomBytes(bytes).toString("hex") }), { tags: [name] });
  await a.svc.push(name, { compression: "none" });
  return { id, layer: (await a.store.images.manifest(id)).manifest.layers[0]! };
}

const partials = async (root: string) => (await readdir(join(root, PARTIAL_DIR)).catch(() => [] as string[])).filter((n) => /^[0-9a-f]{64}$/.test(n));

describe.skipIf(!reg)("resumable pulls", { timeout: 120_000 }, () => {
  const r = reg as RegistryPeer;

  it("an aborted pull resumes: only the rest of each blob it was in", async () => {
    const name = `${r.host}/resume-test/app:1`;
    const a = await freshService();
    // two layers of 6 MiB each, pushed as plain tars so sizes are what the store holds
    const random = () => randomBytes(3 << 20).toString("hex");
    const base = await a.svc.import(tarStream({ "data/a.txt": random() }));
    const { id } = await a.svc.build({ base: base.id, layers: [tarStream({ "data/b.txt": random() })], tags: [name] });
    await a.svc.push(name, { compression: "none" });
    const layers = (await a.store.images.manifest(id)).manifest.layers;
    const digests = layers.map((l) => l.digest);
    const total = layers.reduce((n, l) => n + l.size, 0);

    const b = await freshService();
    const abort = new AbortController();
    const progress = new Map<string, number>();
    const first = await b.svc
      .pull(name, {
        signal: abort.signal,
        onProgress: (e) => {
          if (e.type !== "blob-progress") return;
          progress.set(e.digest, e.bytes);
          if ([...progress.values()].reduce((n, x) => n + x, 0) > total / 2) abort.abort(new Error("test: stop half-way"));
        },
      })
      .catch((e: unknown) => e);
    expect(first).toBeInstanceOf(Error);
    expect(await b.store.images.has(id)).toBe(false);
    const left = await partials(b.store.root);
    expect(left.length).toBeGreaterThan(0);
    let have = 0;
    for (const f of left) have += (await stat(join(b.store.root, PARTIAL_DIR, f))).size;
    expect(have).toBeGreaterThan(total / 4);

    const mark = (await r.accessLog()).length;
    const second = await b.svc.pull(name);
    expect(second.id).toBe(id);
    expect(second.bytesTransferred).toBe(total - have);
    expect(await blobBytes(r, mark, digests)).toBe(total - have);
    expect(second.blobs.some((x) => x.status === "written" && x.bytes < x.size)).toBe(true);
    expect(await partials(b.store.root)).toEqual([]);
    expect((await b.store.fsck()).ok).toBe(true);
  });

  it("a download from the start writes each byte once: its partial file is the ingest's own file", async () => {
    const name = `${r.host}/resume-test/once:1`;
    const { layer } = await pushedImage(name, 4 << 20);
    const b = await freshService();
    const partial = join(b.store.root, PARTIAL_DIR, layer.digest.slice(7));
    const looks: Array<{ nlink: number; inIngest: boolean }> = [];
    await b.svc.pull(name, {
      onProgress: (e) => {
        if (e.type !== "blob-progress" || e.digest !== layer.digest || looks.length > 0) return;
        const st = statSync(partial);
        const ingest = join(b.store.root, "ingest");
        looks.push({ nlink: st.nlink, inIngest: readdirSync(ingest).some((f) => statSync(join(ingest, f)).ino === st.ino) });
      },
    });
    expect(looks).toEqual([{ nlink: 2, inIngest: true }]);
    expect(await partials(b.store.root)).toEqual([]);
    expect((await b.store.fsck()).ok).toBe(true);
  });

  it("a partial file with other links is not written through: the resume appends to a copy of its own", async () => {
    const name = `${r.host}/resume-test/shared:1`;
    const { id, layer } = await pushedImage(name, 1 << 20);
    const bytes = new Uint8Array(await (await fetch(`${r.url}/v2/resume-test/shared/blobs/${layer.digest}`)).arrayBuffer());
    const b = await freshService();
    // another name for the partial file's bytes (as the store's blob, or a killed pull's ingest, would be)
    const elsewhere = join(b.store.root, "elsewhere");
    await writeFile(elsewhere, bytes.subarray(0, 300_000));
    await mkdir(join(b.store.root, PARTIAL_DIR), { recursive: true });
    await link(elsewhere, join(b.store.root, PARTIAL_DIR, layer.digest.slice(7)));
    const mark = (await r.accessLog()).length;
    const pulled = await b.svc.pull(name);
    expect(pulled.id).toBe(id);
    expect(await blobBytes(r, mark, [layer.digest])).toBe(layer.size - 300_000);
    const after = await readFile(elsewhere);
    expect(after.length).toBe(300_000);
    expect(Buffer.compare(after, bytes.subarray(0, 300_000))).toBe(0);
    expect(await partials(b.store.root)).toEqual([]);
  });

  it("a partial file with the wrong bytes fails the pull as bad content, goes, and the next pull starts from zero", async () => {
    const name = `${r.host}/resume-test/bad:1`;
    const { id, layer } = await pushedImage(name, 1 << 20);
    const b = await freshService();
    await mkdir(join(b.store.root, PARTIAL_DIR), { recursive: true });
    await writeFile(join(b.store.root, PARTIAL_DIR, layer.digest.slice(7)), randomBytes(100_000));
    await expect(b.svc.pull(name)).rejects.toMatchObject({ name: "DataIntegrityError" });
    expect(await b.store.images.has(id)).toBe(false);
    const mark = (await r.accessLog()).length;
    expect((await b.svc.pull(name)).id).toBe(id);
    expect(await blobBytes(r, mark, [layer.digest])).toBe(layer.size);
    expect(await partials(b.store.root)).toEqual([]);
  });

  it("a layer blob the store holds as content (a registry push to berth serve, say) is scanned there, not fetched", async () => {
    const name = `${r.host}/resume-test/held:1`;
    const a = await freshService();
    const { id } = await a.svc.import(tarStream({ "data/d.txt": randomBytes(1 << 20).toString("hex") }), { tags: [name] });
    const layer = (await a.svc.push(name)).blobs.find((x) => x.digest !== id);
    expect(layer).toBeDefined();

    const b = await freshService();
    // the pushed gzip blob, as content only: no layer, no image
    const res = await fetch(`${r.url}/v2/resume-test/held/blobs/${layer!.digest}`);
    await b.store.content.put(new Uint8Array(await res.arrayBuffer()), { digest: layer!.digest });
    const mark = (await r.accessLog()).length;
    const pulled = await b.svc.pull(name);
    expect(pulled.id).toBe(id);
    expect(await blobBytes(r, mark, [layer!.digest])).toBe(0);
    expect(pulled.blobs.find((x) => x.digest === layer!.digest)).toMatchObject({ status: "exists", bytes: 0 });
    expect((await b.store.fsck()).ok).toBe(true);
  });
});
