/**
 * Image locations as skopeo spells them, for copies from the command line:
 * `docker://<reference>` (a registry), `oci:<dir>[:<ref name>]` (an OCI
 * layout directory; the directory may not contain `:`, as in skopeo) and
 * `oci-archive:<file>[:<ref name>]` (the same as one tar, `archive.ts`).
 * @module
 */
import { InvalidArgumentError } from "@berth/digest";
import { type Reference, isValidOciRefName, parseReference } from "@berth/oci";
import type { RegistryClient } from "./client.js";
import { type ImageDestination, type ImageSource, layoutDestination, layoutSource, registryDestination, registrySource } from "./endpoints.js";
import { REGISTRY_ERROR_CODES } from "./errors.js";
import { packOciArchive, tempLayoutDir, unpackOciArchive } from "./archive.js";
import { OciLayout } from "./layout.js";

/** A parsed location. */
export type ImageLocation =
  | { transport: "docker"; reference: Reference }
  | { transport: "oci"; dir: string; refName?: string }
  | { transport: "oci-archive"; file: string; refName?: string };

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
  for (const transport of ["oci", "oci-archive"] as const) {
    if (!s.startsWith(`${transport}:`)) continue;
    const rest = s.slice(transport.length + 1);
    const i = rest.indexOf(":");
    const where = i < 0 ? rest : rest.slice(0, i);
    const refName = i < 0 ? undefined : rest.slice(i + 1);
    if (where === "") throw invalid(s, transport === "oci" ? "no directory" : "no file");
    if (refName !== undefined && !isValidOciRefName(refName)) throw invalid(s, `${JSON.stringify(refName)} is not a valid OCI ref name`);
    const ref = refName === undefined ? {} : { refName };
    return transport === "oci" ? { transport, dir: where, ...ref } : { transport, file: where, ...ref };
  }
  throw invalid(s, "want docker://<reference>, oci:<dir>[:<ref name>] or oci-archive:<file>[:<ref name>]");
}

/** The source a location names (a layout or archive must exist); `close()` it after the copy (an archive's temp layout goes). */
export async function openSource(loc: ImageLocation, client: RegistryClient): Promise<ImageSource> {
  if (loc.transport === "oci") return layoutSource(await OciLayout.open(loc.dir), loc.refName, client.maxManifestSize);
  if (loc.transport === "oci-archive") {
    const tmp = await tempLayoutDir();
    try {
      await unpackOciArchive(loc.file, tmp.dir);
      const source = layoutSource(await OciLayout.open(tmp.dir), loc.refName, client.maxManifestSize);
      return { ...source, description: `oci-archive:${loc.file}${loc.refName !== undefined ? `:${loc.refName}` : ""}`, close: tmp.remove };
    } catch (err) {
      await tmp.remove();
      throw err;
    }
  }
  return registrySource(client.repository(loc.reference), loc.reference.digest ?? loc.reference.tag ?? "latest");
}

/**
 * The destination a location names and the tag the root gets there (a
 * layout is created when missing); `close(ok)` it after the copy: an
 * archive is packed into its file then (replacing it), or not at all.
 */
export async function openDestination(loc: ImageLocation, client: RegistryClient, options: { chunkSize?: number } = {}): Promise<{ destination: ImageDestination; tag: string | undefined }> {
  if (loc.transport === "oci") return { destination: layoutDestination(await OciLayout.open(loc.dir, { create: true })), tag: loc.refName };
  if (loc.transport === "oci-archive") {
    const tmp = await tempLayoutDir();
    const destination = layoutDestination(await OciLayout.open(tmp.dir, { create: true }));
    const close = async (ok: boolean) => {
      try {
        if (ok) await packOciArchive(tmp.dir, loc.file);
      } finally {
        await tmp.remove();
      }
    };
    return { destination: { ...destination, description: `oci-archive:${loc.file}`, close }, tag: loc.refName };
  }
  return { destination: registryDestination(client.repository(loc.reference, { push: true }), options), tag: loc.reference.tag };
}
