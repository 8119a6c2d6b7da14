/**
 * `@berth/peers`: launchers for the real tools berth is tested against —
 * one shared dockerd (with its own containerd), Debian's docker client,
 * docker-registry, and lookups for skopeo, umoci, podman, zstd, openssl,
 * chromium, tmux, and a small XFS file system with reflinks (`mountReflinkFs`).
 * Tests skip when a peer is missing, unless
 * `BERTH_REQUIRE_PEERS=1` (CI), where a missing peer is an error.
 *
 * @packageDocumentation
 */
export { findCommand, peersRequired, requirePeer, PEER_PACKAGES } from "./commands.js";
export {
  dockerd,
  dockerdPaths,
  dockerdStatus,
  peersDir,
  pingDocker,
  startDockerd,
  stopDockerd,
  type DockerOptions,
  type DockerPeer,
  type DockerResult,
  type DockerdPaths,
  type DockerdStatus,
  type StartDockerdOptions,
} from "./dockerd.js";
export {
  PeerCommandError,
  PeerError,
  PeerLockError,
  PeerTimeoutError,
  PeerUnavailableError,
  type PeerErrorOptions,
} from "./errors.js";
export { mountReflinkFs, type ReflinkFs, type ReflinkFsOptions } from "./reflinkfs.js";
export { exec, execOk, type ExecOptions, type ExecResult } from "./exec.js";
export {
  BUSYBOX_TAG,
  buildImage,
  busyboxBase,
  imageId,
  writeBusyboxRootfs,
  type BuildImageOptions,
  type BuiltImage,
  type ContextFile,
} from "./images.js";
/** Cross-process lock under a file (e.g. under {@link peersDir}): for tests that share names in the one dockerd. */
export { withLock } from "./proc.js";
export { freePort, registry, type RegistryOptions, type RegistryPeer } from "./registry.js";
export {
  type AccessLogEntry,
  authConfigLines,
  parseAccessLog,
  type RegistryAuth,
  readAccessLog,
  TEST_USER,
  writeHtpasswd,
} from "./registry-auth.js";
export { tokenIssuer, type TokenIssuer, type TokenIssuerOptions, type TokenRequestRecord } from "./token-issuer.js";
export {
  busyboxImage,
  classicImage,
  dockerLoad,
  dockerSave,
  filesImage,
  history,
  inspect,
  randomImage,
  repeatedLayerImage,
  sharedBaseImages,
  type DockerHistoryEntry,
  type DockerImageInspect,
  type FilesImageContents,
  type FilesImageOptions,
  type FixtureImage,
  type FixtureOptions,
  type RandomImageOptions,
  type SharedBaseImages,
} from "./fixtures.js";
