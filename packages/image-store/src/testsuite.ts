/**
 * Conformance suites for {@link ImageStore} and {@link ReferenceStore}
 * implementations (containerd's `testsuite` idea): every implementation runs
 * the same tests.
 *
 * ```ts
 * import { imageStoreSuite, referenceStoreSuite } from "@berth/image-store/testsuite";
 * import { afterEach, describe, expect, it } from "vitest"; // or jest's globals
 * imageStoreSuite("fs", async () => {
 *   const store = await openStore({ root: await mkdtemp(...) });
 *   return { store, reopen: () => openStore({ root }), cleanup: () => store.close() };
 * }, { describe, it, expect, afterEach });
 * ```
 *
 * The suites take the test runner's `describe`, `it`, `expect` and
 * `afterEach` as an argument ({@link TestApi}): this entry point imports no
 * test runner, so it works beside any version of vitest or jest.
 * @module
 */
import { BerthError, chainId, type Digest, sha256 } from "@berth/digest";
import type { LayerStore } from "@berth/layer-store";
import type { ImageStore, ReferenceStore } from "./api.js";
import { MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_MANIFEST } from "@berth/oci";
import { makeTar } from "./tar-fixture.js";
import type { SuiteMatchers, TestApi as LayerTestApi } from "@berth/layer-store/testsuite";

/**
 * The test runner's functions the suites are written with, passed in so this
 * entry point imports no test runner: vitest's and jest's `describe`, `it` and
 * `expect` fit as they are (`import { describe, expect, it } from "vitest"`).
 * Only the matchers in {@link SuiteMatchers} (layer-store's, shared) are used.
 */
export interface TestApi extends LayerTestApi {
  afterEach(fn: () => Promise<void>): void;
}

export type { SuiteMatchers };

/** The parts of a store the suites use. */
export interface SuiteStore {
  images: ImageStore;
  references: ReferenceStore;
  /** Used to register the layers images need. */
  layers: Pick<LayerStore, "register" | "holders" | "has">;
  close?(): Promise<void>;
}

/** What a suite's factory returns. */
export interface SuiteFixture<S extends SuiteStore = SuiteStore> {
  store: S;
  /** Open the same store anew (persistent implementations): the suite checks everything survived. */
  reopen?: () => Promise<S>;
  cleanup?: () => Promise<void>;
}

const enc = new TextEncoder();

export { makeTar };

/** A minimal ustar archive with one regular file (what layer stores accept). */
export function tinyTar(name: string, content: string): Uint8Array {
  return makeTar({ [name]: content });
}

/** A Docker-style config over `diffIds`; `tag` makes it unique. */
export function suiteConfig(diffIds: string[], tag: string, history?: Array<{ empty_layer?: boolean }>): Uint8Array {
  return enc.encode(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Cmd: [tag] },
      history: history ?? diffIds.map(() => ({ created_by: tag })),
      rootfs: { type: "layers", diff_ids: diffIds },
    }),
  );
}

const BAD_IDS = [
  "../../etc/passwd",
  "sha256:../../../etc/passwd",
  `sha256:${"A".repeat(64)}`,
  `sha256:${"a".repeat(63)}`,
  `sha256:${"a".repeat(64)}/..`,
  `md5:${"a".repeat(32)}`,
  "",
];
const DIGEST_CODES = ["ERR_DIGEST_FORMAT", "ERR_DIGEST_LENGTH", "ERR_DIGEST_UNSUPPORTED"];

async function expectCode(p: Promise<unknown>, codes: string | string[]): Promise<BerthError> {
  const list = Array.isArray(codes) ? codes : [codes];
  try {
    await p;
  } catch (err) {
    if (!(err instanceof BerthError)) throw new Error(`expected a BerthError with code ${list.join(" or ")}, got ${String(err)}`, { cause: err });
    if (!list.includes(err.code)) throw new Error(`expected code ${list.join(" or ")}, got ${err.code}: ${err.message}`, { cause: err });
    return err;
  }
  throw new Error(`expected an error with code ${list.join(" or ")}, got success`);
}

function withFixture<S extends SuiteStore>(factory: () => Promise<SuiteFixture<S>>, afterEach: TestApi["afterEach"]) {
  const open: SuiteFixture<S>[] = [];
  afterEach(async () => {
    for (const f of open.splice(0)) await f.cleanup?.();
  });
  return async () => {
    const f = await factory();
    open.push(f);
    return f;
  };
}

async function baseImage(s: SuiteStore, tag = "base") {
  const t1 = tinyTar("a.txt", `a ${tag}`);
  const t2 = tinyTar("b.txt", `b ${tag}`);
  const l1 = await s.layers.register([t1]);
  const l2 = await s.layers.register([t2], l1.chainID);
  const config = suiteConfig([sha256(t1), sha256(t2)], tag);
  return { l1, l2, config, image: await s.images.create(config) };
}

/** The ImageStore conformance suite (moby `image/store.go` semantics). */
export function imageStoreSuite<S extends SuiteStore>(name: string, factory: () => Promise<SuiteFixture<S>>, t: TestApi): void {
  const { describe, it, expect } = t;
  const fixture = withFixture(factory, t.afterEach);
  describe(`ImageStore conformance: ${name}`, () => {
    it("create: ID = sha256(config), config verbatim, layer held, OCI manifest, idempotent", async () => {
      const { store } = await fixture();
      const { l1, l2, config, image } = await baseImage(store);
      expect(image.id).toBe(sha256(config));
      expect(Array.from(image.configBytes)).toEqual(Array.from(config));
      expect(image.chainID).toBe(l2.chainID);
      expect(image.size).toBe(l1.contentSize! + l2.contentSize!); // file bytes (dockerd's size), not the tar sizes
      expect(image.size).toBeLessThan(l1.size + l2.size);
      expect(await store.layers.holders(l2.chainID)).toContain(`image:${image.id}`);
      const m = await store.images.manifest(image.id);
      expect(m.digest).toBe(image.manifestDigest);
      expect(sha256(m.bytes)).toBe(m.digest);
      expect(m.manifest.mediaType).toBe(MEDIA_TYPE_OCI_MANIFEST);
      expect(m.manifest.config).toEqual({ mediaType: MEDIA_TYPE_OCI_CONFIG, digest: image.id, size: config.length });
      expect(m.manifest.layers.map((l) => l.digest)).toEqual([l1.blob.digest, l2.blob.digest]);
      const again = await store.images.create(config);
      expect(again.id).toBe(image.id);
      expect(again.manifestDigest).toBe(image.manifestDigest);
      expect(await store.images.len()).toBe(1);
    });

    it("create refuses bad configs and missing layers without changing anything", async () => {
      const { store } = await fixture();
      const t = tinyTar("x", "x");
      await store.layers.register([t]);
      await expectCode(store.images.create(enc.encode("{")), "ERR_INVALID_JSON");
      await expectCode(store.images.create(enc.encode('{"os":"linux"}')), "ERR_INVALID_CONFIG");
      await expectCode(store.images.create(suiteConfig([sha256(t)], "h", [{}, {}])), "ERR_INVALID_CONFIG");
      await expectCode(store.images.create(suiteConfig([sha256(tinyTar("y", "missing"))], "m")), "ERR_LAYER_NOT_FOUND");
      expect(await store.images.len()).toBe(0);
      expect(await store.images.ids()).toEqual([]);
    });

    it("refuses malformed and path-like IDs at every method", async () => {
      const { store } = await fixture();
      const { image } = await baseImage(store);
      for (const bad of BAD_IDS) {
        await expectCode(store.images.get(bad), DIGEST_CODES);
        await expectCode(store.images.has(bad), DIGEST_CODES);
        await expectCode(store.images.delete(bad), DIGEST_CODES);
        await expectCode(store.images.setParent(bad, image.id), DIGEST_CODES);
        await expectCode(store.images.setParent(image.id, bad), DIGEST_CODES);
        await expectCode(store.images.getParent(bad), DIGEST_CODES);
        await expectCode(store.images.children(bad), DIGEST_CODES);
        await expectCode(store.images.setLastUpdated(bad), DIGEST_CODES);
        await expectCode(store.images.getLastUpdated(bad), DIGEST_CODES);
        await expectCode(store.images.setBuiltLocally(bad), DIGEST_CODES);
        await expectCode(store.images.isBuiltLocally(bad), DIGEST_CODES);
        await expectCode(store.images.manifest(bad), DIGEST_CODES);
        await expectCode(store.references.tag("x:1", bad), DIGEST_CODES);
        await expectCode(store.references.referencesOf(bad), DIGEST_CODES);
      }
      await expectCode(store.images.search("../x"), DIGEST_CODES);
      expect(await store.images.ids()).toEqual([image.id]);
    });

    it("get/delete of unknown images: ERR_IMAGE_NOT_FOUND", async () => {
      const { store } = await fixture();
      const missing = `sha256:${"0".repeat(64)}`;
      await expectCode(store.images.get(missing), "ERR_IMAGE_NOT_FOUND");
      await expectCode(store.images.delete(missing), "ERR_IMAGE_NOT_FOUND");
      await expectCode(store.images.getParent(missing), "ERR_IMAGE_NOT_FOUND");
      expect(await store.images.has(missing)).toBe(false);
    });

    it("search by unique prefix; ambiguous and unknown prefixes are typed errors", async () => {
      const { store } = await fixture();
      const t = tinyTar("s", "s");
      await store.layers.register([t]);
      const ids: Digest[] = [];
      for (let i = 0; i < 20; i++) ids.push((await store.images.create(suiteConfig([sha256(t)], `s${i}`))).id);
      for (const id of ids) {
        expect(await store.images.search(id)).toBe(id);
        expect(await store.images.search(id.slice(7, 19))).toBe(id);
      }
      const firsts = ids.map((id) => id[7]!);
      const dup = firsts.find((c, i) => firsts.indexOf(c) !== i);
      if (dup) await expectCode(store.images.search(dup), "ERR_AMBIGUOUS_PREFIX");
      const unused = [..."0123456789abcdef"].find((c) => !firsts.includes(c));
      if (unused) await expectCode(store.images.search(`${unused}0`), "ERR_IMAGE_NOT_FOUND");
    });

    it("parents, children, heads; delete drops the children's links", async () => {
      const { store } = await fixture();
      const t = tinyTar("p", "p");
      await store.layers.register([t]);
      const mk = async (n: string) => (await store.images.create(suiteConfig([sha256(t)], n))).id;
      const a = await mk("a");
      const b = await mk("b");
      const c = await mk("c");
      await store.images.setParent(b, a);
      await store.images.setParent(c, b);
      expect(await store.images.getParent(c)).toBe(b);
      expect(await store.images.children(a)).toEqual([b]);
      expect(await store.images.heads()).toEqual([c]);
      await expectCode(store.images.setParent(a, c), "ERR_INVALID_PARENT");
      await expectCode(store.images.setParent(a, `sha256:${"1".repeat(64)}`), "ERR_IMAGE_NOT_FOUND");
      await store.images.delete(b);
      expect(await store.images.getParent(c)).toBeUndefined();
      expect(await store.images.children(a)).toEqual([]);
      expect(await store.images.heads()).toEqual([a, c].sort());
    });

    it("parentless: the images without a parent, sorted, kept as parents are set, cleared and deleted", async () => {
      const f = await fixture();
      const { store } = f;
      const t = tinyTar("o", "o");
      await store.layers.register([t]);
      const mk = async (n: string) => (await store.images.create(suiteConfig([sha256(t)], n))).id;
      expect(await store.images.parentless()).toEqual([]);
      const a = await mk("a");
      const b = await mk("b");
      const c = await mk("c");
      expect(await store.images.parentless()).toEqual([a, b, c].sort());
      await store.images.setParent(b, a);
      await store.images.setParent(c, b);
      expect(await store.images.parentless()).toEqual([a]);
      await store.images.setParent(c, null);
      expect(await store.images.parentless()).toEqual([a, c].sort());
      await store.images.setParent(c, a);
      await store.images.delete(a);
      expect(await store.images.parentless()).toEqual([b, c].sort());
      if (f.reopen) {
        const again = await f.reopen();
        try {
          expect(await again.images.parentless()).toEqual([b, c].sort());
        } finally {
          await again.close?.();
        }
      }
    });

    it("lastUpdated and builtLocally", async () => {
      const { store } = await fixture();
      const { image } = await baseImage(store);
      expect(await store.images.getLastUpdated(image.id)).toBeUndefined();
      const d = new Date("2023-03-04T05:06:07.089Z");
      await store.images.setLastUpdated(image.id, d);
      expect((await store.images.getLastUpdated(image.id))?.getTime()).toBe(d.getTime());
      expect(await store.images.isBuiltLocally(image.id)).toBe(false);
      await store.images.setBuiltLocally(image.id);
      expect(await store.images.isBuiltLocally(image.id)).toBe(true);
    });

    it("delete releases the layer hold and returns what it released", async () => {
      const { store } = await fixture();
      const { l2, image } = await baseImage(store);
      await store.references.tag("gone:1", image.id);
      const r = await store.images.delete(image.id);
      expect(r.deleted).toEqual([image.id]);
      expect(r.releasedLayers).toEqual([l2.chainID]);
      expect(r.untagged).toEqual(["docker.io/library/gone:1"]);
      expect(await store.layers.holders(l2.chainID)).not.toContain(`image:${image.id}`);
      await expectCode(store.references.resolve("gone:1"), "ERR_IMAGE_NOT_FOUND");
      expect(await store.images.len()).toBe(0);
    });

    it("delete with onlyIf: judged on the references and children of that moment; a gone image is no error", async () => {
      const { store } = await fixture();
      const { image } = await baseImage(store);
      const child = (await store.images.create(suiteConfig([sha256(tinyTar("a.txt", "a base")), sha256(tinyTar("b.txt", "b base"))], "child"))).id;
      await store.images.setParent(child, image.id);
      await store.references.tag("kept:1", image.id);
      const dangling = (now: { references: string[]; children: string[] }) => now.references.length === 0 && now.children.length === 0;
      const seen: unknown[] = [];
      const r = await store.images.delete(image.id, {
        prune: true,
        onlyIf: (now) => {
          seen.push(now);
          return dangling(now);
        },
      });
      expect(seen).toEqual([{ references: ["docker.io/library/kept:1"], children: [child] }]);
      expect(r).toEqual({ deleted: [], releasedLayers: [], untagged: [] });
      expect(await store.images.has(image.id)).toBe(true);
      await store.images.delete(child);
      await store.references.untag("kept:1");
      expect((await store.images.delete(image.id, { onlyIf: dangling })).deleted).toEqual([image.id]);
      expect((await store.images.delete(image.id, { onlyIf: dangling })).deleted).toEqual([]);
    });

    it("map and len", async () => {
      const { store } = await fixture();
      const { image } = await baseImage(store, "one");
      const { image: two } = await baseImage(store, "two");
      const m = await store.images.map();
      expect([...m.keys()].sort()).toEqual([image.id, two.id].sort());
      expect(m.get(image.id)?.chainID).toBe(image.chainID);
      expect(await store.images.len()).toBe(2);
    });

    it("everything survives reopening", async () => {
      const f = await fixture();
      if (!f.reopen) return;
      const { image } = await baseImage(f.store);
      const { image: child } = await baseImage(f.store, "child");
      await f.store.images.setParent(child.id, image.id);
      await f.store.images.setBuiltLocally(child.id);
      await f.store.images.setLastUpdated(child.id, new Date(1_000));
      await f.store.references.tag("kept:1", child.id);
      const s = await f.reopen();
      try {
        expect((await s.images.ids()).sort()).toEqual([image.id, child.id].sort());
        expect(await s.images.getParent(child.id)).toBe(image.id);
        expect(await s.images.isBuiltLocally(child.id)).toBe(true);
        expect((await s.images.getLastUpdated(child.id))?.getTime()).toBe(1_000);
        expect(await s.references.resolve("kept:1")).toBe(child.id);
        expect((await s.images.get(image.id)).manifestDigest).toBe(image.manifestDigest);
      } finally {
        await s.close?.();
      }
    });
  });
}

/** The ReferenceStore conformance suite (Docker's reference store and lookup order). */
export function referenceStoreSuite<S extends SuiteStore>(name: string, factory: () => Promise<SuiteFixture<S>>, t: TestApi): void {
  const { describe, it, expect } = t;
  const fixture = withFixture(factory, t.afterEach);
  describe(`ReferenceStore conformance: ${name}`, () => {
    it("tag normalises, is idempotent, conflicts without force, moves with force", async () => {
      const { store } = await fixture();
      const { image: a } = await baseImage(store, "ra");
      const { image: b } = await baseImage(store, "rb");
      expect(await store.references.tag("ubuntu", a.id)).toEqual({ ref: "docker.io/library/ubuntu:latest" });
      expect(await store.references.tag("docker.io/library/ubuntu:latest", a.id)).toEqual({ ref: "docker.io/library/ubuntu:latest" });
      const err = await expectCode(store.references.tag("ubuntu:latest", b.id), "ERR_TAG_CONFLICT");
      expect(err.message).toContain("ubuntu:latest");
      expect(await store.references.resolve("ubuntu")).toBe(a.id);
      expect(await store.references.tag("ubuntu", b.id, { force: true })).toEqual({ ref: "docker.io/library/ubuntu:latest", previous: a.id });
      expect(await store.references.resolve("ubuntu:latest")).toBe(b.id);
    });

    it("resolve: full ID, tag, name@digest, unique prefix", async () => {
      const { store } = await fixture();
      const { image } = await baseImage(store, "res");
      await store.references.tag("host:5000/x/y:t", image.id);
      expect(await store.references.resolve(image.id)).toBe(image.id);
      expect(await store.references.resolve(image.id.slice(7))).toBe(image.id);
      expect(await store.references.resolve("host:5000/x/y:t")).toBe(image.id);
      expect(await store.references.resolve(image.id.slice(7, 19))).toBe(image.id);
      expect(await store.references.resolve(`host:5000/x/y@${image.manifestDigest}`)).toBe(image.id);
      await expectCode(store.references.resolve("host:5000/x/y:other"), "ERR_IMAGE_NOT_FOUND");
      await expectCode(store.references.resolve(`sha256:${"f".repeat(64)}`), "ERR_IMAGE_NOT_FOUND");
      await expectCode(store.references.resolve("Not/Valid"), "ERR_INVALID_REFERENCE");
    });

    it("find: resolve's answers, undefined for what resolve does not find", async () => {
      const { store } = await fixture();
      const { image } = await baseImage(store, "find");
      await store.references.tag("host:5000/x/y:t", image.id);
      expect(await store.references.find("host:5000/x/y:t")).toBe(image.id);
      expect(await store.references.find(`host:5000/x/y@${image.manifestDigest}`)).toBe(image.id);
      expect(await store.references.find(image.id.slice(7, 19))).toBe(image.id);
      expect(await store.references.find("host:5000/x/y:other")).toBeUndefined();
      expect(await store.references.find(`sha256:${"f".repeat(64)}`)).toBeUndefined();
      await expectCode(store.references.find("Not/Valid"), "ERR_INVALID_REFERENCE");
    });

    it("untag, referencesOf, list", async () => {
      const { store } = await fixture();
      const { image } = await baseImage(store, "lst");
      await store.references.tag("b:1", image.id);
      await store.references.tag("a:1", image.id);
      expect(await store.references.referencesOf(image.id)).toEqual(["docker.io/library/a:1", "docker.io/library/b:1"]);
      expect(await store.references.list()).toEqual([
        { ref: "docker.io/library/a:1", id: image.id },
        { ref: "docker.io/library/b:1", id: image.id },
      ]);
      expect(await store.references.untag("a:1")).toBe(image.id);
      await expectCode(store.references.untag("a:1"), "ERR_REFERENCE_NOT_FOUND");
      expect(await store.references.referencesOf(image.id)).toEqual(["docker.io/library/b:1"]);
    });

    it("refuses invalid references and unknown images", async () => {
      const { store } = await fixture();
      const { image } = await baseImage(store, "inv");
      for (const bad of ["", "UPPER", "x:-y", "a//b", "../etc/passwd", "0".repeat(64), `x:1@sha256:${"a".repeat(64)}`]) {
        await expectCode(store.references.tag(bad, image.id), "ERR_INVALID_REFERENCE");
      }
      await expectCode(store.references.tag("ok:1", `sha256:${"9".repeat(64)}`), "ERR_IMAGE_NOT_FOUND");
      expect(await store.references.list()).toEqual([]);
    });

    it("chain IDs in configs are those of the registered layers", async () => {
      const { store } = await fixture();
      const { image, config } = await baseImage(store, "chain");
      const diffIds = (JSON.parse(new TextDecoder().decode(config)) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
      expect(image.chainID).toBe(chainId(diffIds));
    });
  });
}
