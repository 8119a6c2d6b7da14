/**
 * Fuzzing (fast-check) the digest parser every package calls on strangers'
 * strings: any string parses to a canonical `sha256:<64 hex>` or is refused
 * with a typed error. 5,000 cases by default; `BERTH_FUZZ_RUNS` for the long
 * run, `BERTH_FUZZ_SEED` to replay (RELIABILITY.md).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BerthError, parseDigest } from "../src/index.js";

const RUNS = Number(process.env.BERTH_FUZZ_RUNS ?? 5000);
const SEED = process.env.BERTH_FUZZ_SEED === undefined ? undefined : Number(process.env.BERTH_FUZZ_SEED);

describe("fuzzing parseDigest (fast-check)", () => {
  it("canonical or a typed refusal", () => {
    let accepted = 0;
    const hex = fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEF"), minLength: 60, maxLength: 68 });
    const input = fc.oneof(
      fc.string(),
      hex.map((h) => `sha256:${h}`),
      fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 64, maxLength: 64 }).map((h) => `sha256:${h}`),
      fc.tuple(fc.constantFrom("sha256", "sha512", "SHA256", "sha256+b64u", ""), fc.constantFrom(":", "", "::"), hex).map(([a, s, h]) => `${a}${s}${h}`),
    );
    fc.assert(
      fc.property(input, (s) => {
        try {
          const d = parseDigest(s);
          expect(d).toMatch(/^sha256:[a-f0-9]{64}$/);
          accepted++;
        } catch (err) {
          if (!(err instanceof BerthError) || !/^ERR_[A-Z0-9_]+$/.test(err.code)) throw err;
        }
      }),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    expect(accepted).toBeGreaterThan(0);
  });
});
