/**
 * What the Engine API face needs from the image service (`@berth/image-service`;
 * `engineService` in adapter.ts maps it): exactly these calls, no more. The face parses HTTP, calls
 * them and shapes the answers per API version; every rule (how a name
 * resolves, what a filter means, moby's delete and prune rules, what load
 * accepts) lives behind this interface. The adapter from the real package is
 * meant to be a thin mapping.
 *
 * Errors: the face maps the error classes of `@berth/digest` to statuses
 * (see `errors.ts`): NotFoundError 404, InvalidArgumentError 400,
 * AlreadyExistsError and FailedPreconditionError 409, UnavailableError 503,
 * anything else 500. Messages reach the docker CLI as `Error response from
 * daemon: <message>`, so for the cases the CLI shows they must be dockerd's
 * texts; `ENGINE_MESSAGES` in `errors.ts` lists the ones the recordings show,
 * and the face writes the not-found text itself from the name it asked for.
 * @module
 */
import type { Writable } from "node:stream";
import type { Digest } from "@berth/digest";
import type { LayerLookupAnswer } from "@berth/docker-archive";
import type { PullResult, PushResult, RegistryEvent } from "@berth/image-service";
import type { RegistryCredential as Credential } from "@berth/image-service";

/**
 * Filters as `key → values` (docker's `--filter key=value`, repeated keys
 * OR-ed): keys `dangling`, `label`, `before`, `since`, `reference`, `until`
 * for listing; `dangling`, `label`, `label!`, `until` for prune. The service
 * validates keys and values (dockerd: `invalid filter 'x'` → InvalidArgumentError).
 */
export type Filters = Readonly<Record<string, readonly string[]>>;

/** One manifest of an image (API ≥ 1.47 `Manifests`, only when asked). */
export interface ManifestInfo {
  /** Manifest digest. */
  digest: Digest;
  mediaType: string;
  /** Manifest size in bytes. */
  size: number;
  kind: "image" | "attestation" | "unknown";
  /** Every blob the manifest references is in the store. */
  available: boolean;
  /** Bytes of the manifest, config and layer blobs in the store. */
  contentSize: number;
  /** For `image` manifests. */
  platform?: { os: string; architecture: string; variant?: string; "os.version"?: string };
  /** For `image` manifests: sum of the unpacked layer sizes. */
  unpackedSize?: number;
  /** For `attestation` manifests: the image manifest they describe. */
  attestationFor?: Digest;
}

/** What `GET /images/json` and `/system/df` show of one image. */
export interface ImageSummary {
  id: Digest;
  /** Parent image ID (set by loads of legacy archives and the classic builder), or undefined. */
  parentId?: Digest;
  /** Familiar `repo:tag` names (`busybox:1`, `localhost:5000/x/y:z`), sorted. */
  repoTags: string[];
  /** Familiar `repo@digest` names. */
  repoDigests: string[];
  /** Unix seconds of the config's `created` (0 when absent). */
  created: number;
  /** dockerd's image size (sum of the layers' file bytes). */
  size: number;
  /** Bytes shared with other images (only when asked with `sharedSize`; else undefined). */
  sharedSize?: number;
  /** Config labels (null when the config has none, as dockerd sends them). */
  labels: Record<string, string> | null;
  /** The image's target descriptor (its manifest or index), for API ≥ 1.48. */
  descriptor?: { mediaType: string; digest: Digest; size: number };
  /** Only when asked with `manifests`. */
  manifests?: ManifestInfo[];
}

/** Options of {@link EngineImageService.list}. */
export interface ListOptions {
  /** Include intermediate images (untagged with children): `docker images -a`. */
  all: boolean;
  filters: Filters;
  sharedSize: boolean;
  manifests: boolean;
}

/** What `GET /images/{name}/json` shows (the version-independent part). */
export interface ImageInspect {
  id: Digest;
  repoTags: string[];
  repoDigests: string[];
  /** Parent image ID, or "" */
  parent: string;
  comment: string;
  /** RFC 3339 from the config, or undefined when the config has none. */
  created?: string;
  /** Legacy fields from the config (`container`, `container_config`, `docker_version`, `author`). */
  container: string;
  containerConfig: Record<string, unknown> | null;
  dockerVersion: string;
  author: string;
  /** The config's `config` object exactly as stored (null when absent). */
  config: Record<string, unknown> | null;
  architecture: string;
  variant?: string;
  os: string;
  osVersion?: string;
  size: number;
  /** DiffIDs. */
  layers: Digest[];
  /** When a tag last moved onto the image (RFC 3339), if ever. */
  lastTagTime?: string;
  descriptor?: { mediaType: string; digest: Digest; size: number };
  /** Only when asked with `manifests`. */
  manifests?: ManifestInfo[];
}

/** One history row, newest first (dockerd's `HistoryResponseItem`). */
export interface HistoryItem {
  /** The image ID of this step when an image of the parent chain has it, else "<missing>". */
  id: string;
  created: number;
  createdBy: string;
  /** Familiar tags of that image. */
  tags: string[];
  size: number;
  comment: string;
}

/** One line of a delete or prune report. */
export type DeleteItem = { untagged: string } | { deleted: Digest };

/** What a prune removed. */
export interface PruneResult {
  deleted: DeleteItem[];
  spaceReclaimed: number;
}

/**
 * Load progress, in the order dockerd writes it: per new layer a
 * `Loading layer` with bytes done/total (the ID is the layer's short
 * DiffID hex or blob hex, as the service chooses), then per image one
 * `Loaded image: <familiar tag>` or `Loaded image ID: <id>` line.
 */
export type LoadEvent =
  | { type: "layer"; id: string; current: number; total: number }
  | { type: "loaded"; tag?: string; id: Digest };

/** Options of {@link EngineImageService.pull} and {@link EngineImageService.push}. */
export interface RegistryCallOptions {
  /** From `X-Registry-Auth`; anonymous when undefined. */
  credential?: Credential;
  signal: AbortSignal;
  /** Called as the copy goes (what the face turns into dockerd's progress messages). */
  onProgress(event: RegistryEvent): void;
}

/** Options of {@link EngineImageService.load}. */
export interface LoadOptions {
  /** Called as the load goes; `quiet` loads still report `loaded`. */
  onEvent(event: LoadEvent): void;
  signal: AbortSignal;
  /** The lease of a {@link EngineImageService.lookupLayers} answer (`berth-lease=`): released when the load ends. */
  lookupLease?: string;
}

/** An archive being written by {@link EngineImageService.save}. */
export interface SaveStream {
  /** Archive size when known in advance (sent as Content-Length). */
  size?: number;
  /**
   * Write the archive to `out` (not ending it); the save's signal stops it.
   * @throws when `out` closes first (`ERR_OUTPUT_CLOSED`) or a blob fails
   */
  writeTo(out: Writable): Promise<number>;
}

/** Disk usage (`GET /system/df`, images part). */
export interface DiskUsage {
  /** Bytes of all layers in the store (dockerd's `LayersSize`). */
  layersSize: number;
  /** Every image, with `sharedSize` set. */
  images: ImageSummary[];
  /** Bytes no image would still need if every unused image went (berth runs no containers: all of them). */
  reclaimable: number;
}

/** The store facts `GET /info` reports. */
export interface StoreInfo {
  /** Absolute store root. */
  root: string;
  images: number;
}

/** The image service as the Engine API face uses it. */
export interface EngineImageService {
  /** Images as `docker images` lists them, newest first. */
  list(opts: ListOptions): Promise<ImageSummary[]>;
  /**
   * Resolve `name` as dockerd does (full ID, reference, unique ID prefix,
   * `name@digest`) and describe the image.
   * @throws NotFoundError when nothing matches
   */
  inspect(name: string, opts: { manifests: boolean }): Promise<ImageInspect>;
  /** History rows of the image `name` resolves to, newest first. */
  history(name: string): Promise<HistoryItem[]>;
  /**
   * Point `target` (a full reference, already checked by the face) at the
   * image `source` resolves to (moving it if it pointed elsewhere, as dockerd does).
   */
  tag(source: string, target: string): Promise<void>;
  /**
   * `docker rmi`: moby's rules (untag when removed by name and other names
   * remain; delete; with `prune` also the untagged parents left childless;
   * conflicts as FailedPreconditionError / AlreadyExistsError with dockerd's texts).
   */
  remove(name: string, opts: { force: boolean; prune: boolean }): Promise<DeleteItem[]>;
  /** `docker image prune`: dangling images (or with `dangling=false` every unused one), filtered. */
  prune(filters: Filters): Promise<PruneResult>;
  /**
   * A `docker save` archive of the named images (names as the client gave
   * them; a bare repository name means every tag of it, as moby's
   * `parseNames`). Resolves once every name resolved (so a bad name is an
   * error before any byte is sent).
   */
  save(names: string[], opts: { signal: AbortSignal }): Promise<SaveStream>;
  /**
   * Load a `docker save` / OCI archive from a stream (read without loss
   * whatever its timing). Rejects with InvalidArgumentError/DataIntegrityError
   * for a bad archive; nothing of a failed load stays visible.
   */
  load(archive: AsyncIterable<Uint8Array>, opts: LoadOptions): Promise<void>;
  /**
   * Which of `chainIDs` (a stranger's JSON value, checked) the store has,
   * held under a lease for a load to name (berth's negotiated incremental load).
   * @throws InvalidArgumentError `ERR_INVALID_LOOKUP`
   */
  lookupLayers(chainIDs: unknown): Promise<LayerLookupAnswer>;
  /**
   * `docker import` of a rootfs tar (`POST /images/create?fromSrc=-`): one
   * layer from the stream, `changes` (Dockerfile instructions: ENV, CMD, …)
   * applied, `message` as the history comment, tagged `tag` (a full
   * reference, checked by the face) when given.
   * @returns the new image's ID
   */
  importImage(
    rootfs: AsyncIterable<Uint8Array>,
    opts: { tag?: string; message: string; changes: string[]; platform?: string; signal: AbortSignal },
  ): Promise<Digest>;
  /**
   * `docker pull`: the image `reference` names (a tag or digest reference,
   * normalised) from its registry into the store, with the client's
   * credential (`X-Registry-Auth`) when it sent one.
   */
  pull(reference: string, opts: RegistryCallOptions & { platform?: string }): Promise<PullResult>;
  /** `docker push` of the store's image `reference` (a tag reference) to its registry. */
  push(reference: string, opts: RegistryCallOptions): Promise<PushResult>;
  /**
   * `POST /auth`: check a credential against a registry (`serveraddress`;
   * Docker Hub when empty), storing nothing.
   * @throws FailedPreconditionError `ERR_REGISTRY_UNAUTHORIZED` when refused
   */
  checkLogin(serverAddress: string, credential: Credential, signal: AbortSignal): Promise<void>;
  /** Disk usage of images. */
  diskUsage(): Promise<DiskUsage>;
  /** Store facts for `/info`. */
  storeInfo(): Promise<StoreInfo>;
}
