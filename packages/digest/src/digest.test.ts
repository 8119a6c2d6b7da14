import { describe, expect, it } from "vitest";
import { chainId, chainIds, DigestSet, hasCode, layerDigests, parseDigest, sha256 } from "./index.js";
import { gzipSync } from "node:zlib";

describe("parseDigest", () => {
  it("accepts sha256", () => {
    expect(parseDigest(`sha256:${"a".repeat(64)}`)).toBe(`sha256:${"a".repeat(64)}`);
  });
  it.each([
    ["", "ERR_DIGEST_FORMAT"],
    ["sha256", "ERR_DIGEST_FORMAT"],
    [`sha256:${"a".repeat(63)}`, "ERR_DIGEST_LENGTH"],
    [`sha256:${"A".repeat(64)}`, "ERR_DIGEST_FORMAT"],
    [`md5:${"a".repeat(32)}`, "ERR_DIGEST_UNSUPPORTED"],
    ["../../etc/passwd", "ERR_DIGEST_FORMAT"],
    [`sha256:../${"a".repeat(61)}`, "ERR_DIGEST_FORMAT"],
  ])("rejects %j with %s", (input, code) => {
    let caught: unknown;
    try {
      parseDigest(input);
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, code)).toBe(true);
  });
});

describe("basics", () => {
  it("hashes", () => {
    expect(sha256("abc")).toBe("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
  it("chains", () => {
    const a = sha256("a");
    const b = sha256("b");
    expect(chainId([a])).toBe(a);
    expect(chainId([a, b])).toBe(sha256(`${a} ${b}`));
    expect(chainIds([a, b])).toEqual([a, sha256(`${a} ${b}`)]);
  });
  it("layer digests of gzip", async () => {
    const raw = new TextEncoder().encode("hello world".repeat(1000));
    const gz = gzipSync(raw);
    const d = await layerDigests([gz.subarray(0, 3), gz.subarray(3)]);
    expect(d.compression).toBe("gzip");
    expect(d.diffID).toBe(sha256(raw));
    expect(d.digest).toBe(sha256(gz));
  });
  it("digest set", () => {
    const s = new DigestSet([sha256("a"), sha256("b")]);
    expect(s.lookup(sha256("a").slice(7, 19))).toBe(sha256("a"));
  });
});
