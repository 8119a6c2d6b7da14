/**
 * Repository names of the registry ↔ repositories of the store's reference
 * store. A registry repository `R` is the store repository Docker's
 * normalisation gives `R`: `app` and `library/app` are both
 * `docker.io/library/app`, `team/x` is `docker.io/team/x`, `ghcr.io/o/x`
 * stays `ghcr.io/o/x`. So `berth load` of `app:1` (reference
 * `docker.io/library/app:1`) is `GET /v2/app/manifests/1` (and
 * `/v2/library/app/manifests/1`), and `docker push HOST/team/x:2` tags
 * `docker.io/team/x:2`, which `berth images` lists as `team/x:2`.
 * The catalog lists each repository once, by Docker's short name (`app`,
 * `team/x`); store names that are not registry names (`localhost:5000/x`)
 * are left out.
 * @module
 */
import { createHash } from "node:crypto";
import { parseReference } from "@berth/oci";

/** The OCI distribution spec's repository name grammar. */
const REPOSITORY_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;

/** A registry repository as the store names it. */
export interface StoreRepository {
  /** The store's repository name: `docker.io/library/app`. */
  name: string;
  /** Docker's short name, used in the catalog and for access checks: `app`. */
  familiar: string;
}

/** The store repository of registry repository `repository` (already validated by the HTTP layer). */
export function storeRepository(repository: string): StoreRepository {
  const ref = parseReference(repository, { defaultTag: false });
  return { name: ref.name, familiar: ref.familiarName };
}

/** The registry name of a store repository (`docker.io/team/x` → `team/x`), or undefined when it has none. */
export function registryName(storeName: string): string | undefined {
  let familiar: string;
  try {
    familiar = parseReference(storeName, { defaultTag: false }).familiarName;
  } catch {
    return undefined;
  }
  return REPOSITORY_RE.test(familiar) ? familiar : undefined;
}

/** Split a store reference `name:tag` / `name@digest` into its repository and the rest. */
export function splitStoreReference(ref: string): { name: string; tag?: string; digest?: string } {
  const at = ref.indexOf("@");
  if (at >= 0) return { name: ref.slice(0, at), digest: ref.slice(at + 1) };
  const colon = ref.lastIndexOf(":");
  const slash = ref.lastIndexOf("/");
  return colon > slash ? { name: ref.slice(0, colon), tag: ref.slice(colon + 1) } : { name: ref };
}

/** The pin record name of a store repository's registry record: `registry.<40 hex>`. */
export function recordName(storeName: string): string {
  return `${RECORD_PREFIX}${createHash("sha256").update(storeName).digest("hex").slice(0, 40)}`;
}

/** Prefix of the registry's pin record names. */
export const RECORD_PREFIX = "registry.";
