/**
 * Fuzzing (fast-check) the filter parsing both faces share: `--filter` flags
 * (CLI) and the filters map (Engine API's `filters=`), through `list` and
 * `prune` over a store with images. Every input lists, prunes or is refused
 * with a typed error — never a TypeError or a crash.
 *
 * 5,000 cases per target by default; `BERTH_FUZZ_RUNS=100000` for the long
 * run, `BERTH_FUZZ_SEED` to replay a reported seed (RELIABILITY.md).
 */
import { BerthError } from "@berth/digest";
import { openMemoryStore } from "@berth/image-store";
import { makeTar } from "@berth/image-store/tar-fixture";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { ImageService, parseFilterFlags, parseUntil } from "../src/index.js";

const RUNS = Number(process.env.BERTH_FUZZ_RUNS ?? 5000);
const SEED = process.env.BERTH_FUZZ_SEED === undefined ? undefined : Number(process.env.BERTH_FUZZ_SEED);
const params = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };

const seen = { ok: 0, refused: new Set<string>() };
function typed(err: unknown): true {
  if (err instanceof BerthError && /^ERR_[A-Z0-9_]+$/.test(err.code)) {
    seen.refused.add(err.code);
    return true;
  }
  throw err;
}

let svc: ImageService;
beforeAll(async () => {
  svc = new ImageService(await openMemoryStore());
  const layer = makeTar({ "a.txt": "fuzz\n" });
  await svc.import((async function* () {
    yield layer;
  })(), { tags: ["fuzz:1"], changes: ["LABEL a=b"] });
});

const key = fc.oneof(fc.constantFrom("dangling", "reference", "before", "since", "label", "label!", "until", "foo"), fc.string({ maxLength: 8 }));
const value = fc.oneof(
  fc.constantFrom("true", "false", "1", "", "fuzz", "fuzz:1", "fu*", "[", "a=b", "a", "24h", "1.5s", "-1h", "2020-01-01T00:00:00Z", "1700000000", "sha256:"),
  fc.string({ maxLength: 20 }),
);

describe("fuzzing filters (fast-check)", () => {
  it("--filter flags, until values", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 20 }), { maxLength: 4 }), fc.string({ maxLength: 30 }), (flags, until) => {
        try {
          parseFilterFlags(flags);
        } catch (err) {
          typed(err);
        }
        try {
          parseUntil(until);
        } catch (err) {
          typed(err);
        }
      }),
      params,
    );
  });

  it("list and prune with any filters map", async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(key, fc.array(value, { maxLength: 3 }), { maxKeys: 3 }), fc.boolean(), async (filters, all) => {
        try {
          await svc.list({ filters, all });
          seen.ok++;
        } catch (err) {
          typed(err);
        }
        // a dry look at what prune would take (nothing is dangling or unused here but the filters must parse the same way)
        await svc.prune({ filters: { ...filters, dangling: ["true"] } }).catch(typed);
      }),
      params,
    );
    expect(seen.ok).toBeGreaterThan(RUNS / 100);
    expect(seen.refused.size).toBeGreaterThanOrEqual(1);
    expect((await svc.list()).map((i) => i.repoTags)).toEqual([["fuzz:1"]]);
  });
});
