/**
 * Response bodies per API version: the image service describes an image
 * once; these functions add, drop and fill fields as dockerd does for the
 * version a request asks for (the field table is in the README; every
 * branch cites the version whose change it implements).
 * @module
 */
import type { DeleteItem, DiskUsage, HistoryItem, ImageInspect, ImageSummary, ManifestInfo, PruneResult } from "./service.js";
import { versionBelow } from "./versions.js";

/** `ManifestSummary` (API 1.47+, only when asked). */
export function manifestSummary(m: ManifestInfo): Record<string, unknown> {
  return {
    ID: m.digest,
    Descriptor: { mediaType: m.mediaType, digest: m.digest, size: m.size },
    Available: m.available,
    Size: { Content: m.contentSize, Total: m.contentSize },
    Kind: m.kind,
    ...(m.kind === "image" && m.platform
      ? { ImageData: { Platform: m.platform, Size: { Unpacked: m.unpackedSize ?? 0 }, Containers: [] } }
      : {}),
    ...(m.kind === "attestation" && m.attestationFor ? { AttestationData: { For: m.attestationFor } } : {}),
  };
}

/** `GET /images/json` item (`image.Summary`) at `version`. */
export function imageSummary(version: string, s: ImageSummary, opts: { containers?: number } = {}): Record<string, unknown> {
  let repoTags: string[] | null = s.repoTags;
  let repoDigests: string[] | null = s.repoDigests;
  if (versionBelow(version, "1.43")) {
    // before 1.43: "<none>" placeholders for an untagged image, null for an empty list
    if (repoTags.length === 0 && repoDigests.length === 0) {
      repoTags = ["<none>:<none>"];
      repoDigests = ["<none>@<none>"];
    } else {
      if (repoTags.length === 0) repoTags = null;
      if (repoDigests.length === 0) repoDigests = null;
    }
  }
  return {
    // 1.51: the count of containers using the image (berth runs none), -1 before
    Containers: opts.containers ?? (versionBelow(version, "1.51") ? -1 : 0),
    Created: s.created,
    Id: s.id,
    Labels: s.labels,
    ParentId: s.parentId ?? "",
    ...(s.descriptor && !versionBelow(version, "1.48") ? { Descriptor: s.descriptor } : {}),
    ...(s.manifests && !versionBelow(version, "1.47") ? { Manifests: s.manifests.map(manifestSummary) } : {}),
    RepoDigests: repoDigests,
    RepoTags: repoTags,
    SharedSize: s.sharedSize ?? -1,
    Size: s.size,
    // 1.44: VirtualSize omitted
    ...(versionBelow(version, "1.44") ? { VirtualSize: s.size } : {}),
  };
}

/** The container.Config fields dockerd returned as zero values before 1.50 (moby's legacyConfigFields "v1.49"). */
const LEGACY_CONFIG_1_49: Record<string, unknown> = {
  Hostname: "",
  Domainname: "",
  User: "",
  AttachStdin: false,
  AttachStdout: false,
  AttachStderr: false,
  Tty: false,
  OpenStdin: false,
  StdinOnce: false,
  Env: null,
  Cmd: null,
  Image: "",
  Volumes: null,
  WorkingDir: "",
  Entrypoint: null,
  OnBuild: null,
  Labels: null,
};

/** The fields 1.50 and 1.51 still returned when empty ("v1.50-v1.51"). */
const LEGACY_CONFIG_1_51: Record<string, unknown> = {
  User: "",
  Env: null,
  Cmd: null,
  Volumes: null,
  WorkingDir: "",
  Entrypoint: null,
  OnBuild: null,
  Labels: null,
};

/** Fields 1.52 omits from `Config` when empty (the OCI spec's omitempty). */
const OMIT_EMPTY_1_52 = ["Cmd", "Entrypoint", "Env", "Labels", "OnBuild", "User", "Volumes", "WorkingDir"];

const isEmpty = (v: unknown) =>
  v === undefined ||
  v === null ||
  v === "" ||
  (Array.isArray(v) && v.length === 0) ||
  (typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);

/** Missing keys of `config` filled from `legacy` (dockerd's additive merge). */
function withLegacy(config: Record<string, unknown> | null, legacy: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...legacy };
  for (const [k, v] of Object.entries(config ?? {})) if (v !== null && v !== undefined) out[k] = v;
  return out;
}

function inspectConfig(version: string, config: Record<string, unknown> | null): Record<string, unknown> | null {
  if (versionBelow(version, "1.50")) return withLegacy(config, LEGACY_CONFIG_1_49);
  if (versionBelow(version, "1.52")) return withLegacy(config, LEGACY_CONFIG_1_51);
  if (config === null) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) if (!(OMIT_EMPTY_1_52.includes(k) && isEmpty(v))) out[k] = v;
  return out;
}

/** Go's zero time, which dockerd prints for "never". */
const ZERO_TIME = "0001-01-01T00:00:00Z";

/** `GET /images/{name}/json` (`image.InspectResponse` + dockerd's legacy fields) at `version`. */
export function imageInspect(version: string, d: ImageInspect): Record<string, unknown> {
  const legacy = versionBelow(version, "1.52");
  const out: Record<string, unknown> = { Id: d.id, RepoTags: d.repoTags, RepoDigests: d.repoDigests };
  // 1.52: Parent, Comment, DockerVersion, Author omitted when empty
  if (legacy || d.parent) out.Parent = d.parent;
  if (legacy || d.comment) out.Comment = d.comment;
  if (d.created !== undefined) out.Created = d.created;
  else if (versionBelow(version, "1.44")) out.Created = ZERO_TIME; // 1.44: omitted when the config has none
  if (versionBelow(version, "1.45")) {
    // 1.45: Container and ContainerConfig removed
    out.Container = d.container;
    out.ContainerConfig = withLegacy(d.containerConfig, LEGACY_CONFIG_1_49);
  }
  if (legacy || d.dockerVersion) out.DockerVersion = d.dockerVersion;
  if (legacy || d.author) out.Author = d.author;
  out.Config = inspectConfig(version, d.config);
  out.Architecture = d.architecture;
  if (d.variant) out.Variant = d.variant;
  out.Os = d.os;
  if (d.osVersion) out.OsVersion = d.osVersion;
  out.Size = d.size;
  if (versionBelow(version, "1.44")) out.VirtualSize = d.size;
  // dockerd's graph driver field; berth has none, so it names itself (omitted from 1.52 on, as with snapshotters)
  if (legacy) out.GraphDriver = { Data: null, Name: "berth" };
  out.RootFS = { Type: "layers", ...(d.layers.length ? { Layers: d.layers } : {}) };
  out.Metadata = { LastTagTime: d.lastTagTime ?? ZERO_TIME };
  if (d.descriptor && !versionBelow(version, "1.48")) out.Descriptor = d.descriptor;
  if (d.manifests && !versionBelow(version, "1.48")) out.Manifests = d.manifests.map(manifestSummary);
  return out;
}

/** `GET /images/{name}/history` items (unchanged across versions; `Tags` null when none, as dockerd). */
export function historyItems(items: HistoryItem[]): Record<string, unknown>[] {
  return items.map((h) => ({
    Comment: h.comment,
    Created: h.created,
    CreatedBy: h.createdBy,
    Id: h.id,
    Size: h.size,
    Tags: h.tags.length ? h.tags : null,
  }));
}

/** `DELETE /images/{name}` and prune items. */
export function deleteItems(items: DeleteItem[]): Record<string, string>[] {
  return items.map((i): Record<string, string> => ("untagged" in i ? { Untagged: i.untagged } : { Deleted: i.deleted }));
}

/** `POST /images/prune`: `ImagesDeleted` is null, not [], when nothing went (the CLI and dockerode expect that). */
export function pruneReport(r: PruneResult): Record<string, unknown> {
  return { ImagesDeleted: r.deleted.length ? deleteItems(r.deleted) : null, SpaceReclaimed: r.spaceReclaimed };
}

/** Which parts `GET /system/df` was asked for (`type`, API 1.42+). */
export interface DfTypes {
  images: boolean;
  containers: boolean;
  volumes: boolean;
  buildCache: boolean;
}

/**
 * `GET /system/df`. Before 1.52 the legacy fields (`LayersSize`, `Images`,
 * `Containers`, `Volumes`, `BuildCache`); 1.52 adds `ImageUsage`,
 * `ContainerUsage`, `VolumeUsage`, `BuildCacheUsage` and keeps the legacy
 * fields unless `verbose` was given (then the usage objects carry the items).
 */
export function diskUsage(version: string, du: DiskUsage, types: DfTypes, verbose: boolean): Record<string, unknown> {
  const legacyFields = versionBelow(version, "1.52") || !verbose;
  const images = du.images.map((i) => imageSummary(version, i, { containers: 0 }));
  const out: Record<string, unknown> = {};
  if (legacyFields) {
    if (types.images) {
      out.LayersSize = du.layersSize;
      out.Images = images;
    }
    if (types.containers) out.Containers = [];
    if (types.volumes) out.Volumes = [];
    if (types.buildCache) out.BuildCache = [];
  }
  if (!versionBelow(version, "1.52")) {
    const empty = { ActiveCount: 0, TotalCount: 0, TotalSize: 0, Reclaimable: 0 };
    if (types.images) {
      out.ImageUsage = {
        ActiveCount: 0,
        TotalCount: du.images.length,
        TotalSize: du.layersSize,
        Reclaimable: du.reclaimable,
        ...(verbose ? { Items: images } : {}),
      };
    }
    if (types.containers) out.ContainerUsage = { ...empty, ...(verbose ? { Items: [] } : {}) };
    if (types.volumes) out.VolumeUsage = { ...empty, ...(verbose ? { Items: [] } : {}) };
    if (types.buildCache) out.BuildCacheUsage = { ...empty, ...(verbose ? { Items: [] } : {}) };
  }
  return out;
}
