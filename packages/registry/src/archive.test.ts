/**
 * OCI archives: a layout packed and unpacked comes back the same; a tar from
 * a stranger with anything but a layout's members is refused before anything
 * lands outside the target directory.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { sha256 } from "@berth/digest";
import { pack } from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { packOciArchive, unpackOciArchive } from "./archive.js";
import { OciLayout } from "./layout.js";

let work: string;
beforeEach(async () => {
  work = await mkdtemp(path.join(tmpdir(), "berth-archive-test-"));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A tar of the given members (name → content, or a header of another type). */
async function tarOf(file: string, members: Array<{ name: string; body?: string; type?: "file" | "symlink" | "directory"; linkname?: string }>): Promise<void> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((res) => p.on("end", () => res()));
  for (const m of members) {
    if (m.type && m.type !== "file") p.entry({ name: m.name, type: m.type, ...(m.linkname ? { linkname: m.linkname } : {}) });
    else p.entry({ name: m.name }, m.body ?? "");
  }
  p.finalize();
  await done;
  await writeFile(file, Buffer.concat(chunks));
}

describe("OCI archives", () => {
  it("pack then unpack gives the layout back, blob for blob", async () => {
    const layout = await OciLayout.open(path.join(work, "src"), { create: true });
    const blob = new TextEncoder().encode("hello archive");
    const digest = await layout.writeBytes(blob);
    await layout.setRef("v1", { mediaType: "application/vnd.oci.image.manifest.v1+json", digest, size: blob.length });
    const file = path.join(work, "x.tar");
    await packOciArchive(layout.dir, file);
    expect((await readdir(work)).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    const out = path.join(work, "out");
    await unpackOciArchive(file, out);
    const back = await OciLayout.open(out);
    expect((await back.resolve("v1")).digest).toBe(digest);
    expect(await readFile(back.blobPath(digest), "utf8")).toBe("hello archive");
  });

  it.each([
    ["a path out of the directory", [{ name: "../evil", body: "x" }]],
    ["an absolute path", [{ name: "/tmp/berth-evil", body: "x" }]],
    ["a symlink blob", [{ name: `blobs/sha256/${sha256("x").slice(7)}`, type: "symlink" as const, linkname: "/etc/passwd" }]],
    ["another file", [{ name: "blobs/sha256/../../x", body: "x" }]],
    ["a member twice", [{ name: "index.json", body: "{}" }, { name: "index.json", body: "{}" }]],
    ["no index.json", [{ name: "oci-layout", body: '{"imageLayoutVersion":"1.0.0"}' }]],
  ])("refuses %s with ERR_INVALID_ARCHIVE, writing nothing outside", async (_what, members) => {
    const file = path.join(work, "bad.tar");
    await tarOf(file, [{ name: "oci-layout", body: '{"imageLayoutVersion":"1.0.0"}' }, ...members].slice(members[0]!.name === "oci-layout" ? 1 : 0));
    const out = path.join(work, "out");
    await expect(unpackOciArchive(file, out)).rejects.toMatchObject({ code: "ERR_INVALID_ARCHIVE" });
    expect(await stat(path.join(work, "evil")).catch(() => undefined)).toBeUndefined();
    expect(await stat("/tmp/berth-evil").catch(() => undefined)).toBeUndefined();
  });

  it("refuses a file that is not a tar", async () => {
    const file = path.join(work, "not.tar");
    await writeFile(file, "just text, not a tar archive at all".repeat(40));
    await expect(unpackOciArchive(file, path.join(work, "out"))).rejects.toMatchObject({ code: "ERR_INVALID_ARCHIVE" });
  });
});
