import { describe, expect, it } from "vitest";
import { digestAlgorithm, digestFromHex, digestHex, hasCode, isDigest, parseDigest, shortId } from "../src/index.js";

const hex64 = "a".repeat(64);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return hasCode(err, "ERR_DIGEST_FORMAT")
      ? "ERR_DIGEST_FORMAT"
      : hasCode(err, "ERR_DIGEST_LENGTH")
        ? "ERR_DIGEST_LENGTH"
        : hasCode(err, "ERR_DIGEST_UNSUPPORTED")
          ? "ERR_DIGEST_UNSUPPORTED"
          : `other: ${String(err)}`;
  }
  return undefined;
}

describe("parseDigest", () => {
  it.each([`sha256:${hex64}`, `sha512:${"0".repeat(128)}`])("accepts %s", (d) => {
    expect(parseDigest(d)).toBe(d);
    expect(isDigest(d)).toBe(true);
  });

  it.each([
    ["", "ERR_DIGEST_FORMAT"],
    ["sha256", "ERR_DIGEST_FORMAT"],
    ["sha256:", "ERR_DIGEST_FORMAT"],
    [":abc", "ERR_DIGEST_FORMAT"],
    [hex64, "ERR_DIGEST_FORMAT"],
    [`sha256:${"a".repeat(63)}`, "ERR_DIGEST_LENGTH"],
    [`sha256:${"a".repeat(65)}`, "ERR_DIGEST_LENGTH"],
    [`sha512:${hex64}`, "ERR_DIGEST_LENGTH"],
    [`sha256:${"A".repeat(64)}`, "ERR_DIGEST_FORMAT"],
    [`sha256:${"g".repeat(64)}`, "ERR_DIGEST_FORMAT"],
    [`sha256:${"a".repeat(62)}==`, "ERR_DIGEST_FORMAT"],
    [`SHA256:${hex64}`, "ERR_DIGEST_FORMAT"],
    [`sha256+:${hex64}`, "ERR_DIGEST_FORMAT"],
    [`sha256..b:${hex64}`, "ERR_DIGEST_FORMAT"],
    [` sha256:${hex64}`, "ERR_DIGEST_FORMAT"],
    [`sha256:${hex64}\n`, "ERR_DIGEST_FORMAT"],
    [`sha256:${"a".repeat(32)}/${"a".repeat(31)}`, "ERR_DIGEST_FORMAT"],
    ["../../etc/passwd", "ERR_DIGEST_FORMAT"],
    [`sha256:../${"a".repeat(61)}`, "ERR_DIGEST_FORMAT"],
    [`md5:${"a".repeat(32)}`, "ERR_DIGEST_UNSUPPORTED"],
    [`sha384:${"a".repeat(96)}`, "ERR_DIGEST_UNSUPPORTED"],
    [`multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8`, "ERR_DIGEST_UNSUPPORTED"],
  ])("rejects %j with %s", (input, code) => {
    expect(codeOf(() => parseDigest(input))).toBe(code);
    expect(isDigest(input)).toBe(false);
  });

  it("rejects non-strings with ERR_DIGEST_FORMAT", () => {
    for (const v of [undefined, null, 42, {}, ["sha256:x"]]) expect(codeOf(() => parseDigest(v as string))).toBe("ERR_DIGEST_FORMAT");
  });

  it("names the offending digest in the message", () => {
    expect(() => parseDigest("sha256:zz")).toThrow(/sha256:zz/);
  });

  it("helpers", () => {
    const d = parseDigest(`sha256:0123456789ab${"c".repeat(52)}`);
    expect(shortId(d)).toBe("0123456789ab");
    expect(shortId("0123456789abcdef")).toBe("0123456789ab");
    expect(digestHex(d)).toBe(d.slice(7));
    expect(digestAlgorithm(d)).toBe("sha256");
    expect(digestFromHex(d.slice(7))).toBe(d);
    expect(codeOf(() => digestFromHex("xyz"))).toBe("ERR_DIGEST_LENGTH");
  });
});
