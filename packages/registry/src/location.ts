/**
 * Image locations as skopeo spells them, for copies from the command line:
 * `docker://<reference>` (a registry) and `oci:<dir>[:<ref name>]` (an OCI
 * layout directory; the directory may not contain `:`, as in skopeo).
 * @module
 */
import { InvalidArgumentError } from "@berth/digest";
import { type Reference, isValidOciRefName, parseReference } from "@berth/oci";
import type { RegistryClient } from "./client.js";
import { type ImageDestination, type ImageSource, layoutDestination, layoutSource, registryDestination, registrySource } from "./endpoints.js";
import { REGISTRY_ERROR_CODES } from "./errors.js";
import { OciLayout } from "./layout.js";

/** A parsed location. */
export type ImageLocation = { transport: "docker"; reference: Reference } | { transport: "oci"; dir: string; refName?: string };

function invalid(s: string, why: string, cause?: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`invalid image location ${JSON.stringify(s)}: ${why}`, { code: REGISTRY_ERROR_CODES.INVALID_LOCATION, ...(cause !== undefined ? { cause } : {}) });
}

/**
 * Parse `docker://…` or `oci:…`.
 * @throws InvalidArgumentError `ERR_INVALID_LOCATION`
 */
export function parseImageLocation(s: string): ImageLocation {
  if (s.startsWith("docker://")) {
    try {
      return { transport: "docker", reference: parseReference(s.slice(9)) };
    } catch (cause) {
      throw invalid(s, (cause as Error).message, cause);
    }
  }
  if (s.startsWith("oci:")) {
    const rest = s.slice(4);
    const i = rest.indexOf(":");
    const dir = i < 0 ? rest : rest.slice(0, i);
    const refName = i < 0 ? undefined : rest.slice(i + 1);
    if (dir === "") throw invalid(s, "no directory");
    if (refName !== undefined && !isValidOciRefName(refName)) throw invalid(s, `${JSON.stringify(refName)} is not a valid OCI ref name`);
    return refName === undefined ? { transport: "oci", dir } : { transport: "oci", dir, refName };
  }
  throw invalid(s, "want docker://<reference> or oci:<dir>[:<ref name>]");
}

/** The source a location names (a layout must exist). */
export async function openSource(loc: ImageLocation, client: RegistryClient): Promise<ImageSource> {
  if (loc.transport === "oci") return layoutSource(await OciLayout.open(loc.dir), loc.refName, client.maxManifestSize);
  return registrySource(client.repository(loc.reference), loc.reference.digest ?? loc.reference.tag ?? "latest");
}

/** The destination a location names and the tag the root gets there (a layout is created when missing). */
export async function openDestination(loc: ImageLocation, client: RegistryClient, options: { chunkSize?: number } = {}): Promise<{ destination: ImageDestination; tag: string | undefined }> {
  if (loc.transport === "oci") return { destination: layoutDestination(await OciLayout.open(loc.dir, { create: true })), tag: loc.refName };
  return { destination: registryDestination(client.repository(loc.reference, { push: true }), options), tag: loc.reference.tag };
}
