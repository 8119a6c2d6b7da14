import { describe, expect, it } from "vitest";
import { MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_LAYER, MEDIA_TYPE_OCI_MANIFEST } from "./media.js";
import {
  nonEmptyLayerCount,
  parseImageConfig,
  parseIndex,
  parseManifest,
  validateDescriptor,
} from "./types.js";

const D1 = `sha256:${"a".repeat(64)}`;
const D2 = `sha256:${"b".repeat(64)}`;

// A config as dockerd 20.10 writes it for `docker import` + one classic build step.
const dockerConfig = {
  architecture: "amd64",
  config: {
    Hostname: "",
    Domainname: "",
    User: "",
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: ["PATH=/bin", "A=1"],
    Cmd: ["/bin/sh"],
    Image: "sha256:0123",
    Volumes: null,
    WorkingDir: "",
    Entrypoint: null,
    OnBuild: null,
    Labels: null,
  },
  container: "4b5f",
  container_config: { Cmd: ["/bin/sh", "-c", "#(nop) ", "ENV A=1"], Env: null, Labels: {} },
  created: "2024-01-01T00:00:00.000000001Z",
  docker_version: "20.10.24",
  history: [
    { created: "2024-01-01T00:00:00Z", created_by: "", comment: "Imported from -" },
    { created: "2024-01-01T00:00:01Z", created_by: "/bin/sh -c #(nop)  ENV A=1", empty_layer: true },
  ],
  os: "linux",
  rootfs: { type: "layers", diff_ids: [D1] },
  "x-unknown": { kept: true },
};

function codeOf(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error("expected an error");
}

describe("parseImageConfig", () => {
  it("reads a Docker config and keeps unknown fields", () => {
    const c = parseImageConfig(new TextEncoder().encode(JSON.stringify(dockerConfig)));
    expect(c.rootfs.diff_ids).toEqual([D1]);
    expect(c.config?.Env).toEqual(["PATH=/bin", "A=1"]);
    expect(c.container_config?.Cmd?.[3]).toBe("ENV A=1");
    expect(c.history?.[1]?.empty_layer).toBe(true);
    expect(c["x-unknown"]).toEqual({ kept: true });
    expect(nonEmptyLayerCount(c)).toBe(1);
  });

  it("accepts an empty rootfs (scratch image)", () => {
    const c = parseImageConfig('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    expect(c.rootfs.diff_ids).toEqual([]);
  });

  const bad: Array<[string, string, string, RegExp]> = [
    ["not JSON", "{", "ERR_INVALID_JSON", /image config: not valid JSON/],
    ["an array", "[]", "ERR_INVALID_JSON", /expected a JSON object, got an array/],
    ["null", "null", "ERR_INVALID_JSON", /got null/],
    ["no rootfs", '{"os":"linux"}', "ERR_INVALID_CONFIG", /rootfs is missing/],
    ["rootfs type", '{"rootfs":{"type":"x","diff_ids":[]}}', "ERR_INVALID_CONFIG", /rootfs.type must be "layers"/],
    ["diff_ids not array", '{"rootfs":{"type":"layers","diff_ids":"x"}}', "ERR_INVALID_CONFIG", /rootfs.diff_ids must be an array/],
    ["bad diff id", '{"rootfs":{"type":"layers","diff_ids":["sha256:../../etc"]}}', "ERR_INVALID_CONFIG", /rootfs.diff_ids\[0\] must be a valid digest/],
    ["os number", `{"os":1,"rootfs":{"type":"layers","diff_ids":[]}}`, "ERR_INVALID_CONFIG", /os must be a string/],
    ["history object", `{"history":{},"rootfs":{"type":"layers","diff_ids":[]}}`, "ERR_INVALID_CONFIG", /history must be an array/],
    ["history entry", `{"history":[1],"rootfs":{"type":"layers","diff_ids":[]}}`, "ERR_INVALID_CONFIG", /history\[0\] must be an object/],
    ["empty_layer string", `{"history":[{"empty_layer":"yes"}],"rootfs":{"type":"layers","diff_ids":[]}}`, "ERR_INVALID_CONFIG", /history\[0\].empty_layer must be a boolean/],
    ["config.Env", `{"config":{"Env":"A=1"},"rootfs":{"type":"layers","diff_ids":[]}}`, "ERR_INVALID_CONFIG", /config.Env must be an array of strings/],
    ["config.Labels", `{"config":{"Labels":{"a":1}},"rootfs":{"type":"layers","diff_ids":[]}}`, "ERR_INVALID_CONFIG", /config.Labels\["a"\] must be a string/],
    ["container_config.Cmd", `{"container_config":{"Cmd":[1]},"rootfs":{"type":"layers","diff_ids":[]}}`, "ERR_INVALID_CONFIG", /container_config.Cmd\[0\] must be a string/],
    ["Healthcheck", `{"config":{"Healthcheck":{"Interval":"x"}},"rootfs":{"type":"layers","diff_ids":[]}}`, "ERR_INVALID_CONFIG", /Healthcheck.Interval must be a number/],
  ];
  it.each(bad)("rejects %s", (_name, text, code, message) => {
    const err = codeOf(() => parseImageConfig(text));
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
    expect(err.message).toMatch(/image config/);
  });

  it("rejects invalid UTF-8", () => {
    expect(codeOf(() => parseImageConfig(new Uint8Array([0x7b, 0xff, 0x7d]))).code).toBe("ERR_INVALID_JSON");
  });

  it("names the document it was given", () => {
    expect(codeOf(() => parseImageConfig("{", "config blob sha256:abc")).message).toMatch(/config blob sha256:abc/);
  });
});

describe("parseManifest / parseIndex / descriptors", () => {
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: D1, size: 10 },
    layers: [{ mediaType: MEDIA_TYPE_OCI_LAYER, digest: D2, size: 2048, annotations: { a: "b" } }],
  };
  it("reads a manifest", () => {
    const m = parseManifest(JSON.stringify(manifest));
    expect(m.layers[0]?.digest).toBe(D2);
  });
  const badManifests: Array<[string, unknown, RegExp]> = [
    ["schemaVersion", { ...manifest, schemaVersion: 1 }, /schemaVersion must be 2/],
    ["mediaType", { ...manifest, mediaType: "text/plain" }, /mediaType must be an image manifest media type/],
    ["no config", { ...manifest, config: undefined }, /config is missing/],
    ["layers", { ...manifest, layers: {} }, /layers must be an array/],
    ["bad digest", { ...manifest, layers: [{ mediaType: "x", digest: "sha256:/etc/passwd", size: 1 }] }, /layers\[0\].digest must be a valid digest/],
    ["negative size", { ...manifest, config: { mediaType: "x", digest: D1, size: -1 } }, /config.size must be a non-negative integer/],
    ["fractional size", { ...manifest, config: { mediaType: "x", digest: D1, size: 1.5 } }, /config.size must be a non-negative integer/],
    ["no mediaType", { ...manifest, config: { digest: D1, size: 1 } }, /config.mediaType must be a string/],
  ];
  it.each(badManifests)("rejects manifest with bad %s", (_n, doc, message) => {
    const err = codeOf(() => parseManifest(JSON.stringify(doc)));
    expect(err.code).toBe("ERR_INVALID_MANIFEST");
    expect(err.message).toMatch(message);
  });

  it("reads an OCI layout index.json", () => {
    const idx = parseIndex(
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: MEDIA_TYPE_OCI_MANIFEST,
            digest: D1,
            size: 400,
            annotations: { "org.opencontainers.image.ref.name": "docker.io/library/busybox:1" },
            platform: { architecture: "amd64", os: "linux" },
          },
        ],
      }),
      "index.json",
    );
    expect(idx.manifests).toHaveLength(1);
  });
  it("rejects a bad index", () => {
    const err = codeOf(() => parseIndex('{"schemaVersion":2,"manifests":[{"digest":1}]}', "index.json"));
    expect(err.code).toBe("ERR_INVALID_INDEX");
    expect(err.message).toMatch(/invalid index.json: manifests\[0\].mediaType/);
    expect(codeOf(() => parseIndex('{"schemaVersion":2}')).message).toMatch(/manifests must be an array/);
    expect(codeOf(() => parseIndex('{"schemaVersion":2,"manifests":[],"annotations":{"a":2}}')).code).toBe("ERR_INVALID_INDEX");
  });
  it("validates a descriptor alone", () => {
    expect(validateDescriptor({ mediaType: "x", digest: D1, size: 0 }).size).toBe(0);
    expect(codeOf(() => validateDescriptor({ mediaType: "x", digest: D1, size: "1" })).code).toBe("ERR_INVALID_DESCRIPTOR");
  });
});
