/**
 * Choosing a manifest from an index by platform, as containerd and docker
 * do: among the entries that `platformMatches` (containerd's
 * `platforms.Only(want)`: an amd64 host also runs 386, arm64 runs arm/v8…),
 * an exact match (after normalisation) wins, else the first compatible one
 * in index order. Entries without a platform, and attestation manifests
 * (`unknown/unknown`), never match.
 * @module
 */
import { FailedPreconditionError } from "@berth/digest";
import { type Descriptor, formatPlatform, normalizePlatform, type OciIndex, type PlatformSpec, platformMatches, platformSpecOf } from "@berth/oci";
import { REGISTRY_ERROR_CODES } from "./errors.js";

function same(a: PlatformSpec, b: PlatformSpec): boolean {
  const x = normalizePlatform(a);
  const y = normalizePlatform(b);
  return x.os === y.os && x.architecture === y.architecture && x.variant === y.variant;
}

/** The entries of `index` that run on `want`, best first. */
export function matchingManifests(index: OciIndex, want: PlatformSpec): Descriptor[] {
  const candidates = index.manifests.filter((d) => d.platform && d.platform.os !== "unknown" && platformMatches(want, platformSpecOf(d.platform)));
  return [...candidates.filter((d) => same(want, platformSpecOf(d.platform!))), ...candidates.filter((d) => !same(want, platformSpecOf(d.platform!)))];
}

/**
 * The best manifest of `index` for `want`.
 * @throws FailedPreconditionError `ERR_NO_MATCHING_PLATFORM` naming the platforms the index has
 */
export function selectManifest(index: OciIndex, want: PlatformSpec, what = "index"): Descriptor {
  const best = matchingManifests(index, want)[0];
  if (best) return best;
  const has = index.manifests.filter((d) => d.platform).map((d) => formatPlatform(d.platform!));
  throw new FailedPreconditionError(`${what} has no manifest for ${formatPlatform(want)} (it has ${has.join(", ") || "no platforms"})`, {
    code: REGISTRY_ERROR_CODES.NO_MATCHING_PLATFORM,
    details: { platforms: has },
  });
}
