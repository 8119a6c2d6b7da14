import { describe, expect, it } from "vitest";
import { AmbiguousPrefixError, DigestSet, NotFoundError, sha256Many } from "../src/index.js";

const d = (hex: string) => `sha256:${hex.padEnd(64, "0")}`;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  return undefined;
}

describe("DigestSet (moby digestset semantics)", () => {
  it("looks up by unique prefix, full digest, algorithm:prefix", () => {
    const s = new DigestSet([d("abcd1"), d("abce2"), d("1234")]);
    expect(s.size).toBe(3);
    expect(s.lookup("abcd")).toBe(d("abcd1"));
    expect(s.lookup("sha256:abce")).toBe(d("abce2"));
    expect(s.lookup(d("1234"))).toBe(d("1234"));
    expect(s.lookup("1")).toBe(d("1234"));
  });

  it("ambiguous prefix and not found are distinct typed errors", () => {
    const s = new DigestSet([d("abcd1"), d("abce2")]);
    expect(() => s.lookup("abc")).toThrow(AmbiguousPrefixError);
    expect(codeOf(() => s.lookup("abc"))).toBe("ERR_AMBIGUOUS_PREFIX");
    expect(codeOf(() => s.lookup("a"))).toBe("ERR_AMBIGUOUS_PREFIX");
    expect(() => s.lookup("abcf")).toThrow(NotFoundError);
    expect(codeOf(() => s.lookup("ffff"))).toBe("ERR_NOT_FOUND");
    expect(codeOf(() => s.lookup("f"))).toBe("ERR_NOT_FOUND");
    expect(codeOf(() => s.lookup(""))).toBe("ERR_DIGEST_FORMAT");
    expect(codeOf(() => s.lookup("xyz"))).toBe("ERR_DIGEST_FORMAT");
    expect(codeOf(() => s.lookup("md5:abc"))).toBe("ERR_DIGEST_FORMAT");
  });

  it("a full digest wins even when it is a prefix of nothing else; add is idempotent; remove", () => {
    const s = new DigestSet();
    const a = s.add(d("ab"));
    s.add(d("ab"));
    expect(s.size).toBe(1);
    s.add(d("abc"));
    expect(s.lookup(a)).toBe(a);
    expect(s.remove(a)).toBe(true);
    expect(s.remove(a)).toBe(false);
    expect(s.lookup("ab")).toBe(d("abc"));
    expect(s.has(a)).toBe(false);
    expect([...s]).toEqual([d("abc")]);
    expect(codeOf(() => s.add("sha256:nope"))).toBe("ERR_DIGEST_LENGTH");
  });

  it("stays fast at 1,000,000 entries", () => {
    const seeds = Array.from({ length: 1_000_000 }, (_, i) => String(i));
    const all: string[] = sha256Many(seeds);
    const s = new DigestSet(all);
    expect(s.size).toBe(1_000_000);
    // Unique-prefix lookups of 12 hex (docker's short IDs) over a sample; each must return its own digest.
    for (let i = 0; i < all.length; i += 997) expect(s.lookup(all[i]!.slice(7, 19))).toBe(all[i]);
    // 4-hex prefixes are ambiguous at this size (~15 per bucket); shorter ones scan.
    expect(codeOf(() => s.lookup(all[0]!.slice(7, 11)))).toBe("ERR_AMBIGUOUS_PREFIX");
    expect(codeOf(() => s.lookup("0"))).toBe("ERR_AMBIGUOUS_PREFIX");
    for (let i = 0; i < 1000; i++) s.remove(all[i]!);
    expect(s.size).toBe(999_000);
    expect(codeOf(() => s.lookup(all[0]!))).toBe("ERR_NOT_FOUND");
  }, 120_000);
});
