/**
 * The conformance suite's test data (distribution-spec v1.1.1
 * `conformance/setup.go`), rebuilt: per-workflow configs and manifests with a
 * `data` field and an unknown field, the gzip'd test layer, random blobs for
 * monolithic and chunked pushes, an empty-layer manifest, and the referrers
 * set (two artifacts typed by config media type, two by `artifactType`, one
 * whose subject was never pushed, and an index artifact).
 *
 * Also the targets the suite runs against: berth twice (the HTTP layer over
 * the in-memory backend double, and `berth serve` over a fresh store on disk
 * with `StoreRegistryBackend`) and the reference registry (Debian's docker-registry, distribution 2.8), with the
 * tests the reference is known to fail named, so they are checked to fail.
 */
import { createHash, randomBytes } from "node:crypto";
import { registry } from "@berth/peers";
import { it } from "vitest";
import { RegistryClient, startBerth, startStoreBerth } from "../helpers.js";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";

/** `sha256:<hex>` of bytes. */
export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Go's json.MarshalIndent(v, "", "\t"). */
function goJson(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v, null, "\t"));
}

/** A blob with its digest and length. */
export interface TestBlob {
  content: Buffer;
  digest: string;
  length: string;
}

function blob(content: Buffer): TestBlob {
  return { content, digest: sha256(content), length: String(content.byteLength) };
}

/** `echo '…' > test.txt; tar czvf test.tar.gz test.txt`, as in setup.go. */
const LAYER_B64 =
  "H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0" +
  "WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD" +
  "jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA";

const descriptor = (mediaType: string, b: TestBlob, extra: Record<string, unknown> = {}) => ({
  mediaType,
  digest: b.digest,
  size: b.content.byteLength,
  ...extra,
  newUnspecifiedField: null,
});

/** All of the suite's data, fresh (random authors make the configs unique per run). */
export function makeFixtures() {
  const configs = Array.from({ length: 5 }, () =>
    blob(goJson({ author: randomBytes(12).toString("base64url"), architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } })),
  );
  const layer = blob(Buffer.from(LAYER_B64, "base64"));
  const layers = [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layer.digest, size: layer.content.byteLength, newUnspecifiedField: null }];
  const configDescriptor = (c: TestBlob) => ({
    mediaType: OCI_CONFIG,
    digest: c.digest,
    size: c.content.byteLength,
    data: c.content.toString("base64"),
    newUnspecifiedField: Buffer.from("hello world").toString("base64"),
  });
  const manifests = configs.map((c) => blob(goJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDescriptor(c), layers })));
  const emptyLayerManifest = blob(goJson({ schemaVersion: 2, config: configDescriptor(configs[1]!), layers: [] }));

  const blobA = blob(randomBytes(42));
  const blobB = blob(randomBytes(42));
  const chunk1 = blobB.content.subarray(0, 22);
  const chunk2 = blobB.content.subarray(22);

  const emptyJson = blob(Buffer.from("{}"));
  const refBlobA = blob(Buffer.from("NHL Peanut Butter on my NHL bagel"));
  const refBlobB = blob(Buffer.from("NBA Strawberry Jam on my NBA croissant"));
  const artifactTypeA = "application/vnd.nhl.peanut.butter.bagel";
  const artifactTypeB = "application/vnd.nba.strawberry.jam.croissant";
  const annotationKey = "org.opencontainers.conformance.test";
  const subjectOf = (m: TestBlob) => descriptor(OCI_MANIFEST, m);
  const emptyDesc = descriptor("application/vnd.oci.empty.v1+json", emptyJson);
  const annotations = new Map<string, string>();
  const artifact = (doc: Record<string, unknown>) => {
    const b = blob(goJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, ...doc }));
    const note = (doc.annotations as Record<string, string> | undefined)?.[annotationKey];
    if (note) annotations.set(b.digest, note);
    return b;
  };
  const refsAConfig = artifact({
    config: descriptor(artifactTypeA, refBlobA),
    layers: [emptyDesc],
    subject: subjectOf(manifests[4]!),
    annotations: { [annotationKey]: "test config a" },
  });
  const refsBConfig = artifact({
    config: descriptor(artifactTypeB, refBlobB),
    layers: [emptyDesc],
    subject: subjectOf(manifests[4]!),
    annotations: { [annotationKey]: "test config b" },
  });
  const refsALayer = artifact({
    artifactType: artifactTypeA,
    config: emptyDesc,
    layers: [descriptor(artifactTypeA, refBlobA)],
    subject: subjectOf(manifests[4]!),
    annotations: { [annotationKey]: "test layer a" },
  });
  const refsBLayer = artifact({
    artifactType: artifactTypeB,
    config: emptyDesc,
    layers: [descriptor(artifactTypeB, refBlobB)],
    subject: subjectOf(manifests[4]!),
    annotations: { [annotationKey]: "test layer b" },
  });
  const refsCLayer = artifact({
    artifactType: artifactTypeB,
    config: emptyDesc,
    layers: [descriptor(artifactTypeB, refBlobB)],
    subject: subjectOf(manifests[3]!),
  });
  const refsIndex = blob(
    goJson({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      artifactType: "application/vnd.food.stand",
      manifests: [descriptor(OCI_MANIFEST, refsAConfig), descriptor(OCI_MANIFEST, refsALayer)],
      subject: subjectOf(manifests[4]!),
      annotations: { [annotationKey]: "test index" },
    }),
  );
  annotations.set(refsIndex.digest, "test index");

  return {
    configs,
    layer,
    manifests,
    emptyLayerManifest,
    blobA,
    blobB,
    chunk1,
    chunk2,
    emptyJson,
    refBlobA,
    refBlobB,
    artifactTypeA,
    artifactTypeB,
    annotationKey,
    annotations,
    refsAConfig,
    refsBConfig,
    refsALayer,
    refsBLayer,
    refsCLayer,
    refsIndex,
    /** A digest nothing has (`sha256("hello world")`). */
    dummyDigest: sha256("hello world"),
    /** A manifest reference that cannot exist. */
    nonexistentManifest: ".INVALID_MANIFEST_NAME",
  };
}

/** A registry the suite runs against. */
export interface Target {
  label: string;
  /** True for berth (checked beyond what the suite requires where the spec says SHOULD), false for a peer. */
  berth: boolean;
  client: RegistryClient;
  /** A second repository for cross-repository mounts. */
  crossmountName: string;
  /** Does the registry mount a blob without `from`? */
  automaticCrossmount: boolean;
  /** Titles of the tests this registry is known to fail (each is checked to fail). */
  knownFailures: ReadonlySet<string>;
  close(): Promise<void>;
}

/**
 * The targets: berth over both backends always; the reference registry when docker-registry is
 * installed (a failure under BERTH_REQUIRE_PEERS=1 when it is not).
 * `knownFailures` lists, per workflow, what distribution 2.8 gets wrong.
 */
export async function targets(namespace: string, referenceFailures: readonly string[]): Promise<Target[]> {
  const out: Target[] = [];
  const berth = await startBerth({ log: { format: "none" } });
  out.push({
    label: "berth (HTTP layer over the in-memory backend double)",
    berth: true,
    client: new RegistryClient(berth.server.url, namespace),
    crossmountName: `${namespace}-crossmount`,
    automaticCrossmount: true,
    knownFailures: new Set(),
    close: () => berth.server.close(),
  });
  const store = await startStoreBerth({ log: { format: "none" } });
  out.push({
    label: "berth serve (HTTP layer over the berth store)",
    berth: true,
    client: new RegistryClient(store.server.url, namespace),
    crossmountName: `${namespace}-crossmount`,
    automaticCrossmount: true,
    knownFailures: new Set(),
    close: () => store.close(),
  });
  const ref = await registry();
  if (ref) {
    out.push({
      label: "reference registry (distribution 2.8)",
      berth: false,
      client: new RegistryClient(ref.url, namespace),
      crossmountName: `${namespace}-crossmount`,
      automaticCrossmount: false,
      knownFailures: new Set(referenceFailures),
      close: () => ref.stop(),
    });
  }
  return out;
}

/** `it`, or `it.fails` when the target is known to fail this test. */
export function spec(target: Target, title: string, fn: (ctx: { skip: () => void }) => Promise<void>): void {
  (target.knownFailures.has(title) ? it.fails : it)(title, fn);
}
