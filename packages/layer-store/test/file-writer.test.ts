import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { sha256 } from "@berth/digest";
import { describe, expect, it } from "vitest";
import { openLayerStore } from "../src/index.js";
import { tempRoot } from "./helpers.js";

/** Write `bytes` into `path` from a worker thread, as load's workers do. */
async function writeFromWorker(path: string, bytes: Uint8Array): Promise<void> {
  const w = new Worker(
    `const { workerData, parentPort } = require("node:worker_threads");
     const fs = require("node:fs");
     const fd = fs.openSync(workerData.path, "r+");
     fs.writeSync(fd, workerData.bytes, 0, workerData.bytes.length, 0);
     fs.closeSync(fd);
     parentPort.postMessage("done");`,
    { eval: true, workerData: { path, bytes } },
  );
  await new Promise<void>((resolve, reject) => {
    w.once("message", () => resolve());
    w.once("error", reject);
  });
  await w.terminate();
}

describe("content.fileWriter: an ingest file another thread fills", () => {
  it("commits what the worker wrote under the digest it computed, once per content", async () => {
    const t = await tempRoot();
    try {
      const s = await openLayerStore({ root: t.root });
      const bytes = new TextEncoder().encode("written on another thread");
      const digest = sha256(bytes);
      const fw = await s.content.fileWriter!();
      await writeFromWorker(fw.path, bytes);
      expect(await fw.commit(digest, bytes.length, digest)).toEqual({ digest, size: bytes.length, existed: false });
      expect(Buffer.from(await s.content.readBytes(digest, 1 << 10)).toString()).toBe("written on another thread");
      const again = await s.content.fileWriter!();
      await writeFromWorker(again.path, bytes);
      expect((await again.commit(digest, bytes.length)).existed).toBe(true);
      expect(readdirSync(join(t.root, "ingest"))).toEqual([]);
    } finally {
      await t.cleanup();
    }
  });

  it("refuses a size the file does not have, or a digest other than the expected one, and leaves nothing", async () => {
    const t = await tempRoot();
    try {
      const s = await openLayerStore({ root: t.root });
      const short = await s.content.fileWriter!();
      writeFileSync(short.path, "abc");
      await expect(short.commit(sha256("abcd"), 4)).rejects.toMatchObject({ code: "ERR_SIZE_MISMATCH" });
      const other = await s.content.fileWriter!();
      writeFileSync(other.path, "abc");
      await expect(other.commit(sha256("abc"), 3, sha256("xyz"))).rejects.toMatchObject({ code: "ERR_DIGEST_MISMATCH" });
      await expect(other.commit(sha256("abc"), 3)).rejects.toMatchObject({ code: "ERR_INGEST_CLOSED" });
      const aborted = await s.content.fileWriter!();
      await aborted.abort();
      await aborted.abort();
      expect(await s.content.has(sha256("abc"))).toBe(false);
      expect(await s.content.has(sha256("abcd"))).toBe(false);
      expect(readdirSync(join(t.root, "ingest"))).toEqual([]);
    } finally {
      await t.cleanup();
    }
  });

  it("trusts the digest it is given: a wrong one (right size) is what fsck finds as blob-corrupt", async () => {
    const t = await tempRoot();
    try {
      const s = await openLayerStore({ root: t.root });
      const lie = await s.content.fileWriter!();
      writeFileSync(lie.path, "abc");
      await lie.commit(sha256("xyz"), 3);
      const r = await s.fsck();
      expect(r.problems.map((p) => `${p.kind}:${p.digest}`)).toContain(`blob-corrupt:${sha256("xyz")}`);
    } finally {
      await t.cleanup();
    }
  });
});
