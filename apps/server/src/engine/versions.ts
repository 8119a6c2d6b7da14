/**
 * Engine API versions: the range berth serves, the version a request asks
 * for (from its `/v1.NN/` prefix, else the current one), and dockerd's
 * answers for versions outside the range.
 * @module
 */
import { InvalidArgumentError } from "@berth/digest";
import { EngineErrorCode } from "./errors.js";

/**
 * The highest API version berth serves and advertises (`Api-Version`): every
 * image-endpoint field change up to 1.52 is implemented (see the README's
 * table); 1.53 adds `Identity` (trusted origin data berth does not have).
 */
export const API_VERSION = "1.52";

/** The lowest API version served (dockerd's default minimum since 25.0). */
export const MIN_API_VERSION = "1.24";

/** Compare two `major.minor` versions numerically (`1.9` < `1.41`): negative, 0 or positive. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map((n) => Number.parseInt(n, 10) || 0);
  const pb = b.split(".").map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** `version < than`. */
export const versionBelow = (version: string, than: string): boolean => compareVersions(version, than) < 0;

/** A request path split into its `/v1.NN` prefix (if any) and the endpoint path. */
export interface VersionedPath {
  /** The version in the path, undefined for an unversioned path. */
  version: string | undefined;
  /** The endpoint path, e.g. `/images/json`. */
  path: string;
}

const VERSIONED = /^\/v([0-9.]+)(\/.*)?$/;

/** Split `/v1.41/images/json` into `1.41` and `/images/json` (dockerd's route pattern `/v{version:[0-9.]+}`). */
export function splitVersion(path: string): VersionedPath {
  const m = VERSIONED.exec(path);
  if (!m) return { version: undefined, path };
  return { version: m[1], path: m[2] ?? "/" };
}

/**
 * The version a request is served at: the path's, else {@link API_VERSION}.
 * @throws InvalidArgumentError `ERR_ENGINE_VERSION_TOO_OLD` / `ERR_ENGINE_VERSION_TOO_NEW`
 *   with dockerd's texts (the CLI prints them as they are).
 */
export function effectiveVersion(requested: string | undefined): string {
  const v = requested ?? API_VERSION;
  if (versionBelow(v, MIN_API_VERSION)) {
    throw new InvalidArgumentError(
      `client version ${v} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
      { code: EngineErrorCode.VersionTooOld },
    );
  }
  if (compareVersions(v, API_VERSION) > 0) {
    throw new InvalidArgumentError(`client version ${v} is too new. Maximum supported API version is ${API_VERSION}`, {
      code: EngineErrorCode.VersionTooNew,
    });
  }
  return v;
}
