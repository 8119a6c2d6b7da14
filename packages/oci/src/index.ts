/**
 * `@berth/oci`: the shared vocabulary of container images — media types and
 * annotations, the OCI and Docker JSON documents with validating parsers,
 * Docker image references, and platforms — with no I/O and no Node built-in
 * beyond `process` for the host platform. Every other berth package takes
 * these from here.
 * @module
 */
export * from "./media.js";
export * from "./platform.js";
export * from "./reference.js";
export * from "./types.js";
