/**
 * OCI image-spec and Docker image JSON documents: types and
 * validating parsers.
 *
 * The parsers check the fields berth relies on (types, digests, sizes) and keep
 * every other field as it was, so a document read and re-serialised never loses
 * data a newer tool wrote. Malformed input throws {@link InvalidArgumentError}
 * with a stable code naming the document kind:
 *
 * | code                  | document                                   |
 * |-----------------------|--------------------------------------------|
 * | `ERR_INVALID_JSON`    | not JSON at all, or not a JSON object      |
 * | `ERR_INVALID_CONFIG`  | image config (`application/vnd.oci.image.config.v1+json`) |
 * | `ERR_INVALID_MANIFEST`| image manifest                             |
 * | `ERR_INVALID_INDEX`   | image index / manifest list, OCI layout `index.json` |
 * | `ERR_INVALID_DESCRIPTOR` | a descriptor on its own                 |
 * @module
 */
import { type Digest, InvalidArgumentError, isDigest } from "@berth/digest";
import { MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST } from "./media.js";

// ---------------------------------------------------------------------------
// Types

/** Platform of a manifest in an index. */
export interface Platform {
  architecture: string;
  os: string;
  "os.version"?: string;
  "os.features"?: string[];
  variant?: string;
  features?: string[];
}

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
  data?: string;
}

/** Health check of a container config (Docker extension). */
export interface HealthConfig {
  Test?: string[] | null;
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/**
 * The runtime configuration inside an image config (`config`, and Docker's
 * `container_config`). Docker's capitalised field names; OCI uses the same.
 */
export interface ContainerConfig {
  Hostname?: string;
  Domainname?: string;
  User?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  ExposedPorts?: Record<string, object> | null;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  Env?: string[] | null;
  Cmd?: string[] | null;
  Healthcheck?: HealthConfig | null;
  ArgsEscaped?: boolean;
  Image?: string;
  Volumes?: Record<string, object> | null;
  WorkingDir?: string;
  Entrypoint?: string[] | null;
  NetworkDisabled?: boolean;
  MacAddress?: string;
  OnBuild?: string[] | null;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  StopTimeout?: number;
  Shell?: string[] | null;
  [key: string]: unknown;
}

/**
 * One entry of an image's history (one build step).
 *
 * History ↔ layers: entries map to `rootfs.diff_ids` in order, skipping the
 * entries with `empty_layer: true`. The n-th entry without `empty_layer` made
 * the n-th layer (`diff_ids[n]`, bottom first); `empty_layer` entries (`ENV`,
 * `CMD`, `LABEL`, …) made none. A config with more non-empty entries than
 * `diff_ids` is refused (`ERR_INVALID_CONFIG`, as moby does); fewer is allowed
 * (layers without a history entry, e.g. `docker import`).
 */
export interface History {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  /** True when the step made no layer (`RUN true`, `ENV`, …): it has no entry in `rootfs.diff_ids`. */
  empty_layer?: boolean;
  [key: string]: unknown;
}

/** The layers of an image, bottom first, by DiffID. */
export interface RootFS {
  type: string;
  diff_ids: Digest[];
}

/**
 * A Docker / OCI image config. Its sha256 is the image ID. Unknown fields are
 * kept as they were (the config is stored verbatim; this is only a view).
 */
export interface ImageConfig {
  architecture: string;
  os: string;
  "os.version"?: string;
  "os.features"?: string[];
  variant?: string;
  created?: string;
  author?: string;
  config?: ContainerConfig | null;
  /** Docker: the config of the build container that made the top layer. */
  container_config?: ContainerConfig | null;
  container?: string;
  docker_version?: string;
  comment?: string;
  /** Docker (legacy builder): the ID of the parent image. */
  parent?: string;
  /** The build steps, oldest first; the ones without `empty_layer` map to `rootfs.diff_ids` in order (see {@link History}). */
  history?: History[];
  rootfs: RootFS;
  [key: string]: unknown;
}

/** An OCI image manifest (also reads Docker schema 2 manifests: same shape). */
export interface OciManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** An OCI image index (also reads Docker manifest lists, and an OCI layout's `index.json`). */
export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

// ---------------------------------------------------------------------------
// Validation helpers

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

class Checker {
  constructor(
    readonly doc: string,
    readonly code: string,
  ) {}

  fail(path: string, what: string): never {
    throw new InvalidArgumentError(`invalid ${this.doc}: ${path} ${what}`, {
      code: this.code,
      details: { document: this.doc, field: path },
    });
  }

  obj(v: unknown, path: string): Obj {
    if (!isObj(v)) this.fail(path, `must be an object, got ${kind(v)}`);
    return v;
  }

  arr(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.fail(path, `must be an array, got ${kind(v)}`);
    return v;
  }

  optObj(o: Obj, key: string, path: string): void {
    const v = o[key];
    if (v !== undefined && v !== null && !isObj(v)) this.fail(`${path}${key}`, `must be an object, got ${kind(v)}`);
  }

  str(o: Obj, key: string, path: string, required = false): void {
    const v = o[key];
    if (v === undefined && !required) return;
    if (typeof v !== "string") this.fail(`${path}${key}`, `must be a string, got ${kind(v)}`);
  }

  bool(o: Obj, key: string, path: string): void {
    const v = o[key];
    if (v !== undefined && typeof v !== "boolean") this.fail(`${path}${key}`, `must be a boolean, got ${kind(v)}`);
  }

  num(o: Obj, key: string, path: string): void {
    const v = o[key];
    if (v !== undefined && (typeof v !== "number" || !Number.isFinite(v))) {
      this.fail(`${path}${key}`, `must be a number, got ${kind(v)}`);
    }
  }

  strArray(o: Obj, key: string, path: string, nullable = true): void {
    const v = o[key];
    if (v === undefined || (v === null && nullable)) return;
    if (!Array.isArray(v)) this.fail(`${path}${key}`, `must be an array of strings, got ${kind(v)}`);
    v.forEach((s, i) => {
      if (typeof s !== "string") this.fail(`${path}${key}[${i}]`, `must be a string, got ${kind(s)}`);
    });
  }

  strMap(o: Obj, key: string, path: string): void {
    const v = o[key];
    if (v === undefined || v === null) return;
    if (!isObj(v)) this.fail(`${path}${key}`, `must be an object of strings, got ${kind(v)}`);
    for (const [k, s] of Object.entries(v)) {
      if (typeof s !== "string") this.fail(`${path}${key}[${JSON.stringify(k)}]`, `must be a string, got ${kind(s)}`);
    }
  }

  digest(o: Obj, key: string, path: string): void {
    const v = o[key];
    if (!isDigest(v)) this.fail(`${path}${key}`, `must be a valid digest, got ${show(v)}`);
  }

  descriptor(v: unknown, path: string): void {
    const d = this.obj(v, path);
    this.str(d, "mediaType", `${path}.`, true);
    this.digest(d, "digest", `${path}.`);
    const size = d.size;
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
      this.fail(`${path}.size`, `must be a non-negative integer, got ${show(size)}`);
    }
    this.strArray(d, "urls", `${path}.`, false);
    this.strMap(d, "annotations", `${path}.`);
    this.str(d, "artifactType", `${path}.`);
    this.str(d, "data", `${path}.`);
    if (d.platform !== undefined) {
      const p = this.obj(d.platform, `${path}.platform`);
      this.str(p, "architecture", `${path}.platform.`, true);
      this.str(p, "os", `${path}.platform.`, true);
      this.str(p, "variant", `${path}.platform.`);
      this.str(p, "os.version", `${path}.platform.`);
      this.strArray(p, "os.features", `${path}.platform.`, false);
    }
  }
}

function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v;
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Parse JSON bytes or text into an object; `doc` names the document in errors.
 * @throws InvalidArgumentError `ERR_INVALID_JSON`
 */
export function parseJsonObject(input: Uint8Array | string, doc: string): Record<string, unknown> {
  let text: string;
  try {
    text = typeof input === "string" ? input : decoder.decode(input);
  } catch (cause) {
    throw new InvalidArgumentError(`invalid ${doc}: not valid UTF-8`, {
      code: "ERR_INVALID_JSON",
      cause,
      details: { document: doc },
    });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (cause) {
    throw new InvalidArgumentError(`invalid ${doc}: not valid JSON (${(cause as Error).message})`, {
      code: "ERR_INVALID_JSON",
      cause,
      details: { document: doc },
    });
  }
  if (!isObj(v)) {
    throw new InvalidArgumentError(`invalid ${doc}: expected a JSON object, got ${kind(v)}`, {
      code: "ERR_INVALID_JSON",
      details: { document: doc },
    });
  }
  return v;
}

function checkContainerConfig(c: Checker, v: unknown, path: string): void {
  if (v === undefined || v === null) return;
  const o = c.obj(v, path);
  const p = `${path}.`;
  for (const k of ["Hostname", "Domainname", "User", "Image", "WorkingDir", "MacAddress", "StopSignal"]) c.str(o, k, p);
  for (const k of ["AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce", "ArgsEscaped"]) {
    c.bool(o, k, p);
  }
  for (const k of ["Env", "Cmd", "Entrypoint", "OnBuild", "Shell"]) c.strArray(o, k, p);
  c.optObj(o, "ExposedPorts", p);
  c.optObj(o, "Volumes", p);
  c.strMap(o, "Labels", p);
  c.num(o, "StopTimeout", p);
  if (o.Healthcheck !== undefined && o.Healthcheck !== null) {
    const h = c.obj(o.Healthcheck, `${p}Healthcheck`);
    c.strArray(h, "Test", `${p}Healthcheck.`);
    for (const k of ["Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"]) c.num(h, k, `${p}Healthcheck.`);
  }
}

/**
 * Validate an image config document (already parsed JSON).
 * @throws InvalidArgumentError `ERR_INVALID_CONFIG`
 */
export function validateImageConfig(v: unknown, doc = "image config"): ImageConfig {
  const c = new Checker(doc, "ERR_INVALID_CONFIG");
  const o = c.obj(v, "document");
  // moby image.NewFromJSON: "invalid image JSON, no RootFS key".
  if (o.rootfs === undefined || o.rootfs === null) c.fail("rootfs", "is missing");
  const rootfs = c.obj(o.rootfs, "rootfs");
  c.str(rootfs, "type", "rootfs.", true);
  if (rootfs.type !== "layers") c.fail("rootfs.type", `must be "layers", got ${show(rootfs.type)}`);
  const diffIds = rootfs.diff_ids;
  if (diffIds !== undefined && diffIds !== null) {
    const list = c.arr(diffIds, "rootfs.diff_ids");
    for (let i = 0; i < list.length; i++) {
      if (!isDigest(list[i])) c.fail(`rootfs.diff_ids[${i}]`, `must be a valid digest, got ${show(list[i])}`);
    }
  }
  // Docker writes architecture/os; old configs may lack them, so they are
  // optional strings here (the OCI spec requires them; skopeo fills them).
  c.str(o, "architecture", "");
  c.str(o, "os", "");
  c.str(o, "variant", "");
  c.str(o, "os.version", "");
  c.strArray(o, "os.features", "", true);
  for (const k of ["created", "author", "container", "docker_version", "comment", "parent", "id"]) c.str(o, k, "");
  checkContainerConfig(c, o.config, "config");
  checkContainerConfig(c, o.container_config, "container_config");
  if (o.history !== undefined && o.history !== null) {
    const history = c.arr(o.history, "history");
    for (let i = 0; i < history.length; i++) {
      const e = c.obj(history[i], `history[${i}]`);
      for (const k of ["created", "created_by", "author", "comment"]) c.str(e, k, `history[${i}].`);
      c.bool(e, "empty_layer", `history[${i}].`);
    }
  }
  return o as ImageConfig;
}

/**
 * Parse and validate image config bytes (`docker image inspect`'s source document).
 * @throws InvalidArgumentError `ERR_INVALID_JSON` or `ERR_INVALID_CONFIG`
 */
export function parseImageConfig(bytes: Uint8Array | string, doc = "image config"): ImageConfig {
  return validateImageConfig(parseJsonObject(bytes, doc), doc);
}

/** The DiffIDs of a config's rootfs (empty when it has none). */
export function configDiffIds(config: ImageConfig): Digest[] {
  return config.rootfs.diff_ids ?? [];
}

/** Number of history entries that made a layer (`empty_layer` not set). */
export function nonEmptyLayerCount(config: ImageConfig): number {
  let n = 0;
  for (const h of config.history ?? []) if (!h.empty_layer) n++;
  return n;
}

/**
 * Validate a descriptor (already parsed JSON).
 * @throws InvalidArgumentError `ERR_INVALID_DESCRIPTOR`
 */
export function validateDescriptor(v: unknown, doc = "descriptor"): Descriptor {
  new Checker(doc, "ERR_INVALID_DESCRIPTOR").descriptor(v, "descriptor");
  return v as Descriptor;
}

/**
 * Validate an image manifest (OCI or Docker schema 2; already parsed JSON).
 * @throws InvalidArgumentError `ERR_INVALID_MANIFEST`
 */
export function validateManifest(v: unknown, doc = "image manifest"): OciManifest {
  const c = new Checker(doc, "ERR_INVALID_MANIFEST");
  const o = c.obj(v, "document");
  if (o.schemaVersion !== 2) c.fail("schemaVersion", `must be 2, got ${show(o.schemaVersion)}`);
  c.str(o, "mediaType", "");
  if (o.mediaType !== undefined && o.mediaType !== MEDIA_TYPE_OCI_MANIFEST && o.mediaType !== MEDIA_TYPE_DOCKER_MANIFEST) {
    c.fail("mediaType", `must be an image manifest media type, got ${show(o.mediaType)}`);
  }
  c.str(o, "artifactType", "");
  if (o.config === undefined) c.fail("config", "is missing");
  c.descriptor(o.config, "config");
  const layers = c.arr(o.layers, "layers");
  for (let i = 0; i < layers.length; i++) c.descriptor(layers[i], `layers[${i}]`);
  if (o.subject !== undefined) c.descriptor(o.subject, "subject");
  c.strMap(o, "annotations", "");
  return o as unknown as OciManifest;
}

/**
 * Parse and validate manifest bytes.
 * @throws InvalidArgumentError `ERR_INVALID_JSON` or `ERR_INVALID_MANIFEST`
 */
export function parseManifest(bytes: Uint8Array | string, doc = "image manifest"): OciManifest {
  return validateManifest(parseJsonObject(bytes, doc), doc);
}

/**
 * Validate an image index / manifest list / OCI layout `index.json` (already parsed JSON).
 * @throws InvalidArgumentError `ERR_INVALID_INDEX`
 */
export function validateIndex(v: unknown, doc = "image index"): OciIndex {
  const c = new Checker(doc, "ERR_INVALID_INDEX");
  const o = c.obj(v, "document");
  if (o.schemaVersion !== 2) c.fail("schemaVersion", `must be 2, got ${show(o.schemaVersion)}`);
  c.str(o, "mediaType", "");
  if (o.mediaType !== undefined && o.mediaType !== MEDIA_TYPE_OCI_INDEX && o.mediaType !== MEDIA_TYPE_DOCKER_MANIFEST_LIST) {
    c.fail("mediaType", `must be an image index media type, got ${show(o.mediaType)}`);
  }
  c.str(o, "artifactType", "");
  const manifests = c.arr(o.manifests, "manifests");
  for (let i = 0; i < manifests.length; i++) c.descriptor(manifests[i], `manifests[${i}]`);
  if (o.subject !== undefined) c.descriptor(o.subject, "subject");
  c.strMap(o, "annotations", "");
  return o as unknown as OciIndex;
}

/**
 * Parse and validate index bytes.
 * @throws InvalidArgumentError `ERR_INVALID_JSON` or `ERR_INVALID_INDEX`
 */
export function parseIndex(bytes: Uint8Array | string, doc = "image index"): OciIndex {
  return validateIndex(parseJsonObject(bytes, doc), doc);
}
