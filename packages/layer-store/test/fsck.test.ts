import { promises as fsp } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { digestHex, sha256 } from "@berth/digest";
import { afterEach, describe, expect, it } from "vitest";
import { openLayerStore } from "../src/index.js";
import { randomBytesFor, tarFor } from "../src/testsuite.js";
import { tempRoot } from "./helpers.js";

const DEAD = "4194999-123"; // pid above Linux's pid_max: never alive

describe("fsck (filesystem)", () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  it("reports corrupt blobs, broken records, orphan refs, stale files with paths, and repairs them", async () => {
    const t = await tempRoot();
    cleanup = t.cleanup;
    const s = await openLayerStore({ root: t.root });
    const base = await s.register([tarFor(1, 2000)], null, { holder: "image:a" });
    const child = await s.register([gzipSync(tarFor(2, 2000))], base.chainID, { holder: "image:b" });
    const other = await s.register([tarFor(3, 2000)], null, { holder: "image:c" });
    const healthy = await s.register([tarFor(4, 2000)], null, { holder: "image:d" });

    // Corrupt the base blob (same size, different bytes): base and its child break.
    const baseBlob = path.join(t.root, "blobs/sha256", digestHex(base.blob.digest));
    const bytes = await fsp.readFile(baseBlob);
    bytes[10] = bytes[10]! ^ 0xff;
    await fsp.writeFile(baseBlob, bytes);
    // Remove another layer's blob.
    await fsp.rm(path.join(t.root, "blobs/sha256", digestHex(other.blob.digest)));
    // Garbage: an unreadable record, holders of a missing layer, a dead ingest and temp file, a dead lease.
    const ghost = sha256("ghost");
    await fsp.writeFile(path.join(t.root, "layers/sha256", `${digestHex(ghost)}.json`), "{not json");
    await fsp.mkdir(path.join(t.root, "layers/refs/sha256", digestHex(sha256("nobody"))), { recursive: true });
    await fsp.writeFile(path.join(t.root, "layers/refs/sha256", digestHex(sha256("nobody")), "h.eA"), "");
    await fsp.writeFile(path.join(t.root, "ingest", `${DEAD}.abcdef`), "partial");
    await fsp.writeFile(path.join(t.root, "layers/sha256", `x.json.${DEAD}.0011.berth-tmp`), "partial");
    await fsp.mkdir(path.join(t.root, "leases", "0".repeat(32)));
    await fsp.writeFile(path.join(t.root, "leases", "0".repeat(32), "owner.json"), JSON.stringify({ pid: 4194999, start: "1" }));

    const r = await s.fsck();
    expect(r.ok).toBe(false);
    const kinds = r.problems.map((p) => `${p.kind}:${p.digest ?? path.basename(p.path)}`).sort();
    expect(kinds).toEqual(
      [
        `blob-corrupt:${base.blob.digest}`,
        `record-blob-missing:${base.chainID}`,
        `record-parent-missing:${child.chainID}`,
        `record-blob-missing:${other.chainID}`,
        `record-corrupt:${ghost}`,
        `ref-orphan:${sha256("nobody")}`,
        `stale-ingest:${DEAD}.abcdef`,
        `stale-temp:x.json.${DEAD}.0011.berth-tmp`,
        `lease-dead:${"0".repeat(32)}`,
      ].sort(),
    );
    for (const p of r.problems) {
      expect(p.repaired).toBe(false);
      expect(path.isAbsolute(p.path)).toBe(true);
    }
    // Read-only fsck changed nothing.
    expect(await s.has(child.chainID)).toBe(true);

    const fixed = await s.fsck({ repair: true });
    expect(fixed.problems.every((p) => p.repaired)).toBe(true);
    const after = await s.fsck();
    expect(after.problems).toEqual([]);
    expect((await s.list()).map((l) => l.chainID)).toEqual([healthy.chainID]);
    expect(await s.holders(healthy.chainID)).toEqual(["image:d"]);
    // The child's gzip blob is now unreferenced garbage for GC.
    const g = await s.gc();
    expect(g.removedBlobs).toEqual([child.blob.digest]);
  });

  /** A store with one layer of `tarFor(seed, 1000)`, its record file and the record's JSON. */
  async function oneLayer(seed: number) {
    const t = await tempRoot();
    cleanup = t.cleanup;
    const s = await openLayerStore({ root: t.root });
    const l = await s.register([tarFor(seed, 1000)]);
    const rec = path.join(t.root, "layers/sha256", `${digestHex(l.chainID)}.json`);
    return { s, l, rec, j: JSON.parse(await fsp.readFile(rec, "utf8")) };
  }

  it("detects a blob whose content does not decompress to the recorded DiffID", async () => {
    const { s, rec, j } = await oneLayer(5);
    j.size = 999;
    await fsp.writeFile(rec, JSON.stringify(j));
    const r = await s.fsck();
    expect(r.problems.map((p) => p.kind)).toEqual(["record-diffid-mismatch"]);
    expect(r.problems[0]!.path).toBe(rec);
  });

  it("detects a recorded content size that differs from the blob's, and a layer that is not a tar", async () => {
    const { s, l, rec, j } = await oneLayer(6);
    expect(j.contentSize).toBe(1000);
    j.contentSize = 1001;
    await fsp.writeFile(rec, JSON.stringify(j));
    expect((await s.fsck()).problems.map((p) => p.kind)).toEqual(["record-diffid-mismatch"]);
    // recordLayer trusts its caller's facts; fsck reads the content and finds no tar
    const junk = randomBytesFor(8, 3000);
    const put = await s.content.put(junk);
    const bad = await s.recordLayer({ blob: { mediaType: "", digest: put.digest, size: put.size }, compression: "none", diffID: put.digest, uncompressedSize: junk.length, contentSize: 0 });
    const r = await s.fsck({ repair: true });
    const found = new Map(r.problems.map((p) => [p.kind, p]));
    expect([...found.keys()].sort()).toEqual(["record-diffid-mismatch", "record-not-tar"]);
    expect(found.get("record-diffid-mismatch")!.digest).toBe(l.chainID);
    expect(found.get("record-not-tar")!.digest).toBe(bad.chainID);
    expect(found.get("record-not-tar")!.message).toMatch(/is not a valid tar archive: bad header checksum at byte 0/);
    expect(await s.has(bad.chainID)).toBe(false);
    expect((await s.fsck()).ok).toBe(true);
  });

  it("open() removes ingests and temp files of dead processes but not live ones", async () => {
    const t = await tempRoot();
    cleanup = t.cleanup;
    const s = await openLayerStore({ root: t.root });
    const w = await s.content.writer();
    await w.write(randomBytesFor(6, 100));
    await fsp.writeFile(path.join(t.root, "ingest", `${DEAD}.0123`), "x");
    await fsp.writeFile(path.join(t.root, `index.json.${DEAD}.0011.berth-tmp`), "x");
    await openLayerStore({ root: t.root });
    const left = await fsp.readdir(path.join(t.root, "ingest"));
    expect(left).toHaveLength(1);
    expect(left[0]!.startsWith(`${process.pid}-`)).toBe(true);
    expect(await fsp.readdir(t.root)).not.toContain(`index.json.${DEAD}.0011.berth-tmp`);
    const c = await w.commit();
    expect(c.existed).toBe(false);
  });

  it("gc leaves in-flight ingests of live processes alone and removes dead ones", async () => {
    const t = await tempRoot();
    cleanup = t.cleanup;
    const s = await openLayerStore({ root: t.root });
    const w = await s.content.writer();
    const data = randomBytesFor(7, 5000);
    await w.write(data.subarray(0, 2000));
    await fsp.writeFile(path.join(t.root, "ingest", `${DEAD}.4567`), "x");
    const r = await s.gc();
    expect(r.removedBlobs).toEqual([]);
    expect(await fsp.readdir(path.join(t.root, "ingest"))).toHaveLength(1);
    await w.write(data.subarray(2000));
    expect(await w.commit(5000, sha256(data))).toEqual({ digest: sha256(data), size: 5000, existed: false });
    expect(await fsp.readdir(path.join(t.root, "ingest"))).toEqual([]);
  });
});
