/**
 * Property-based fuzzing (fast-check) of what berth reads from strangers:
 * references, platforms, image configs, manifests and indexes. Every input
 * either parses or is refused with a typed error (a BerthError with a stable
 * code) — never a TypeError, a RangeError or a hang.
 *
 * 5,000 cases per target by default; `BERTH_FUZZ_RUNS=100000` for the long
 * run, `BERTH_FUZZ_SEED` to replay a reported seed (RELIABILITY.md).
 */
import { BerthError } from "@berth/digest";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parsePlatform } from "./platform.js";
import { normalizeReference, parseReference, parseReferenceStrict } from "./reference.js";
import { parseImageConfig, parseIndex, parseManifest } from "./types.js";

const RUNS = Number(process.env.BERTH_FUZZ_RUNS ?? 5000);
const SEED = process.env.BERTH_FUZZ_SEED === undefined ? undefined : Number(process.env.BERTH_FUZZ_SEED);
const params = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };

/** Outcomes of one target: how many parsed, and which refusals (message up to the first colon) were seen. */
class Outcomes {
  accepted = 0;
  refusals = new Map<string, number>();
  /** Runs `fn`; a throw that is not a typed BerthError fails the property. */
  run(fn: () => unknown): boolean {
    try {
      fn();
      this.accepted++;
    } catch (err) {
      if (!(err instanceof BerthError) || !/^ERR_[A-Z0-9_]+$/.test(err.code) || err.message.length === 0) throw err;
      const key = `${err.code} ${err.message.split(":").slice(0, 2).join(":").slice(0, 60)}`;
      this.refusals.set(key, (this.refusals.get(key) ?? 0) + 1);
    }
    return true;
  }
  /**
   * The mutations reach deep: some inputs pass every check, and the refusals
   * come from many different checks (not all from the first, e.g. "not JSON").
   */
  expectDepth(minKinds: number): void {
    expect(this.accepted, "some inputs must be accepted").toBeGreaterThan(RUNS / 100);
    expect(this.refusals.size, [...this.refusals.keys()].join("\n")).toBeGreaterThanOrEqual(minKinds);
  }
}

const hex64 = fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 64, maxLength: 64 });
const digest = fc.oneof({ weight: 9, arbitrary: hex64.map((h) => `sha256:${h}`) }, { weight: 1, arbitrary: fc.string() });
/** Something valid, or (one time in twenty) any JSON value in its place. */
const or = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 19, arbitrary: valid }, { weight: 1, arbitrary: fc.jsonValue() });
/** A record of all its keys, one of them sometimes dropped. */
const rec = <T extends Record<string, fc.Arbitrary<unknown>>>(shape: T) =>
  fc.tuple(fc.record(shape), fc.nat({ max: 4 * Object.keys(shape).length })).map(([r, drop]) => {
    const out: Record<string, unknown> = { ...r };
    delete out[Object.keys(shape)[drop] ?? ""];
    return out;
  });
const descriptor = rec({
    mediaType: or(fc.constantFrom("application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.config.v1+json", "")),
    digest: or(digest),
    size: or(fc.oneof({ weight: 8, arbitrary: fc.nat() }, { weight: 1, arbitrary: fc.integer() }, { weight: 1, arbitrary: fc.double() })),
    annotations: or(fc.dictionary(fc.string(), or(fc.string()))),
    platform: or(fc.record({ architecture: or(fc.string()), os: or(fc.string()) })),
});

const config = rec({
    architecture: or(fc.constantFrom("amd64", "arm64", "")),
    os: or(fc.constantFrom("linux", "windows", "")),
    created: or(fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.string())),
    rootfs: or(fc.record({ type: or(fc.constant("layers")), diff_ids: or(fc.array(or(digest), { maxLength: 4 })) })),
    history: or(fc.array(rec({ created_by: or(fc.string()), empty_layer: or(fc.boolean()) }), { maxLength: 4 })),
    config: or(
      rec({ Env: or(fc.array(or(fc.string()))), Cmd: or(fc.array(or(fc.string()))), Labels: or(fc.dictionary(fc.string(), or(fc.string()))), StopTimeout: or(fc.integer()) }),
    ),
});

const manifest = rec({
    schemaVersion: or(fc.constant(2)),
    mediaType: or(fc.constantFrom("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")),
    config: or(descriptor),
    layers: or(fc.array(or(descriptor), { maxLength: 4 })),
    annotations: or(fc.dictionary(fc.string(), or(fc.string()))),
  });

const index = rec({
    schemaVersion: or(fc.constant(2)),
    mediaType: or(fc.constant("application/vnd.oci.image.index.v1+json")),
    manifests: or(fc.array(or(descriptor), { maxLength: 4 })),
  });

/** A document as bytes: its JSON, sometimes cut short or with one byte changed. */
const bytesOf = (doc: fc.Arbitrary<unknown>) =>
  fc.tuple(doc, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom("whole", "whole", "whole", "cut", "flip")).map(([d, at, byte, how]) => {
    const b = new TextEncoder().encode(JSON.stringify(d));
    if (how === "cut") return b.subarray(0, at % (b.length + 1));
    if (how === "flip" && b.length > 0) b[at % b.length] = byte;
    return b;
  });

describe("fuzzing what strangers send (fast-check)", () => {
  it("references: parse, normalize or a typed refusal", () => {
    const refish = fc.oneof(
      fc.string(),
      fc.tuple(fc.stringMatching(/^[a-z0-9.:/_-]{0,40}$/), fc.stringMatching(/^[\w.-]{0,10}$/), hex64).map(([n, t, h]) => `${n}:${t}@sha256:${h}`),
    );
    const o = new Outcomes();
    fc.assert(fc.property(refish, (s) => o.run(() => parseReference(s)) && o.run(() => parseReferenceStrict(s)) && o.run(() => normalizeReference(s))), params);
    o.expectDepth(3);
  });

  it("platforms: parse or a typed refusal", () => {
    const o = new Outcomes();
    fc.assert(fc.property(fc.string(), (s) => o.run(() => parsePlatform(s))), params);
    expect(o.accepted + [...o.refusals.values()].reduce((a, b) => a + b, 0)).toBe(RUNS);
  });

  it("image configs (structured mutations and damaged bytes)", () => {
    const o = new Outcomes();
    fc.assert(fc.property(bytesOf(config), (b) => o.run(() => parseImageConfig(b))), params);
    o.expectDepth(10);
  });

  it("manifests (structured mutations and damaged bytes)", () => {
    const o = new Outcomes();
    fc.assert(fc.property(bytesOf(manifest), (b) => o.run(() => parseManifest(b))), params);
    o.expectDepth(8);
  });

  it("indexes (structured mutations and damaged bytes)", () => {
    const o = new Outcomes();
    fc.assert(fc.property(bytesOf(index), (b) => o.run(() => parseIndex(b))), params);
    o.expectDepth(6);
  });

  it("a valid document survives: what parses is what was sent", () => {
    const cfg = { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [`sha256:${"a".repeat(64)}`] } };
    expect(parseImageConfig(JSON.stringify(cfg)).rootfs.diff_ids).toEqual(cfg.rootfs.diff_ids);
  });
});
