/**
 * The path parser under hostile input: random paths built from the pieces
 * that matter (endpoint words, digests good and bad, escapes, dots, slashes,
 * long runs) either parse into a route whose values are valid, or throw a
 * RegistryError with a 4xx status. Seeded, so a failure names its case.
 */
import { isDigest } from "@berth/digest";
import { isValidTag } from "@berth/oci";
import { describe, expect, it } from "vitest";
import { RegistryError } from "../src/registry/errors.js";
import { isValidRepositoryName, isValidUploadId } from "../src/registry/names.js";
import { parseRoute } from "../src/registry/route.js";

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [
  "a", "team", "x.y", "a__b", "a-b", "A", "_", ".", "..", "", "%2e", "%2F", "%00", "%", "%zz", "é", " ", "\t",
  "manifests", "blobs", "uploads", "tags", "list", "referrers", "_catalog", "v2",
  `sha256:${"a".repeat(64)}`, `sha256%3A${"b".repeat(64)}`, `sha512:${"c".repeat(128)}`, "sha256:short", "md5:abc",
  "latest", "-bad", "x".repeat(130), "a".repeat(300), "uuid-1234", "a=b", "a$b",
];
const METHODS = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"];

describe("parseRoute under random input", () => {
  it("parses valid values or throws a 4xx RegistryError, for 20 000 seeded paths", () => {
    const seed = 0x5eed13;
    const rnd = prng(seed);
    for (let i = 0; i < 20_000; i++) {
      const n = 1 + Math.floor(rnd() * 8);
      const segs = Array.from({ length: n }, () => PIECES[Math.floor(rnd() * PIECES.length)]!);
      const path = `/v2/${segs.join("/")}`;
      const method = METHODS[Math.floor(rnd() * METHODS.length)]!;
      let route: ReturnType<typeof parseRoute> | undefined;
      try {
        route = parseRoute(method, path);
      } catch (err) {
        if (!(err instanceof RegistryError) || err.status < 400 || err.status >= 500) {
          throw new Error(`seed ${seed} case ${i}: ${method} ${JSON.stringify(path)} threw ${String(err)}`);
        }
        continue;
      }
      const where = `seed ${seed} case ${i}: ${method} ${JSON.stringify(path)}`;
      if ("name" in route) expect(isValidRepositoryName(route.name), where).toBe(true);
      if (route.kind === "blob" || route.kind === "referrers") expect(isDigest(route.digest), where).toBe(true);
      if (route.kind === "upload") expect(isValidUploadId(route.id), where).toBe(true);
      if (route.kind === "manifest") expect(route.ref.tag !== undefined ? isValidTag(route.ref.tag) : isDigest(route.ref.digest), where).toBe(true);
    }
  });
});
