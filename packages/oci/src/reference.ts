/**
 * Docker image references with the normalisation of distribution/reference
 * (`ParseNormalizedNamed`, `TagNameOnly`, `FamiliarString`):
 *
 * - `ubuntu` → `docker.io/library/ubuntu:latest`, familiar `ubuntu:latest`
 * - `user/app:1` → `docker.io/user/app:1`
 * - `host:5000/x/y:t`, `localhost/x`, `[::1]:5000/x` keep their registry
 * - `name@sha256:…` is a digest reference (no default tag is added)
 * - uppercase in the repository path, a bad tag, a bare 64-hex string (that is
 *   an image ID, not a name) → {@link InvalidArgumentError} code `ERR_INVALID_REFERENCE`
 * @module
 */
import { type Digest, InvalidArgumentError, parseDigest } from "@berth/digest";

/** Registry used for names without one. */
export const DEFAULT_DOMAIN = "docker.io";
const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
const OFFICIAL_REPO_PREFIX = "library/";
/** Tag added to a name that has neither tag nor digest. */
export const DEFAULT_TAG = "latest";
/** Longest name (domain + path) distribution accepts. */
export const NAME_TOTAL_LENGTH_MAX = 255;

// distribution/reference regexp.go, assembled the same way.
const alphanumeric = "[a-z0-9]+";
const separator = "(?:[._]|__|[-]+)";
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const domainNameComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const ipv6address = "\\[(?:[a-fA-F0-9:]+)\\]";
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const host = `(?:${domainName}|${ipv6address})`;
const domainAndPort = `${host}(?::[0-9]+)?`;
const tagPat = "[\\w][\\w.-]{0,127}";
const digestPat = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";

const REFERENCE_RE = new RegExp(`^(${domainAndPort})/(${remoteName})(?::(${tagPat}))?(?:@(${digestPat}))?$`);
const LOOSE_REFERENCE_RE = new RegExp(`^((?:${domainAndPort}/)?${remoteName})(?::(${tagPat}))?(?:@(${digestPat}))?$`);
const TAG_RE = new RegExp(`^${tagPat}$`);
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;
const SHORT_IDENTIFIER_RE = /^[a-f0-9]{6,64}$/;

/** A parsed, normalised image reference. */
export interface Reference {
  /** Registry host (and port): `docker.io`, `localhost:5000`, `[::1]:5000`. */
  domain: string;
  /** Repository path inside the registry: `library/ubuntu`. */
  path: string;
  /** Fully qualified repository name: `docker.io/library/ubuntu`. */
  name: string;
  /** The tag, if any (`latest` is added to a bare name). */
  tag?: string;
  /** The digest, if any. */
  digest?: Digest;
  /** The normalised reference: `docker.io/library/ubuntu:latest`, `docker.io/library/ubuntu@sha256:…`. */
  string: string;
  /** The short form Docker shows: `ubuntu:latest`, `user/app:1`, `localhost:5000/x:t`. */
  familiar: string;
  /** The short repository name: `ubuntu`, `user/app`, `localhost:5000/x`. */
  familiarName: string;
}

/** Options for {@link parseReference}. */
export interface ParseReferenceOptions {
  /** Add `:latest` to a name with neither tag nor digest (default true, like `docker tag`/`docker pull`). */
  defaultTag?: boolean;
}

function invalid(input: string, why: string): InvalidArgumentError {
  const shown = JSON.stringify(input.length > 300 ? `${input.slice(0, 300)}…` : input);
  return new InvalidArgumentError(`invalid reference ${shown}: ${why}`, {
    code: "ERR_INVALID_REFERENCE",
    details: { reference: input },
  });
}

function splitDockerDomain(name: string): [string, string] {
  const i = name.indexOf("/");
  let domain: string;
  let remainder: string;
  const first = i === -1 ? "" : name.slice(0, i);
  if (i === -1 || (!/[.:]/.test(first) && first !== "localhost" && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = first;
    remainder = name.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes("/")) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return [domain, remainder];
}

/** The short repository name Docker displays for a domain + path. */
function familiarNameOf(domain: string, path: string): string {
  if (domain !== DEFAULT_DOMAIN) return `${domain}/${path}`;
  if (path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = path.slice(OFFICIAL_REPO_PREFIX.length);
    if (!rest.includes("/")) return rest;
  }
  return path;
}

/**
 * Parse and normalise a Docker image reference (distribution's
 * `ParseNormalizedNamed`, then `TagNameOnly` unless `defaultTag: false`).
 *
 * @throws InvalidArgumentError `ERR_INVALID_REFERENCE` naming the input and what is wrong.
 */
export function parseReference(input: string, options: ParseReferenceOptions = {}): Reference {
  if (typeof input !== "string") throw invalid(String(input), `expected a string, got ${typeof input}`);
  if (input === "") throw invalid(input, "repository name must have at least one component");
  if (IDENTIFIER_RE.test(input)) {
    throw invalid(input, "cannot specify 64-byte hexadecimal strings (that is an image ID, not a name)");
  }
  const [domain0, remainder] = splitDockerDomain(input);
  const tagSep = remainder.indexOf(":");
  const remote = tagSep >= 0 ? remainder.slice(0, tagSep) : remainder;
  if (remote.toLowerCase() !== remote) {
    throw invalid(input, `repository name ${JSON.stringify(remote.split("@")[0])} must be lowercase`);
  }
  const full = `${domain0}/${remainder}`;
  const m = REFERENCE_RE.exec(full);
  if (!m) {
    if (/^[^:@]*:[^@]*$/.test(remainder) && !TAG_RE.test(remainder.slice(tagSep + 1))) {
      throw invalid(input, `tag ${JSON.stringify(remainder.slice(tagSep + 1))} must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
    }
    throw invalid(input, "invalid reference format");
  }
  const domain = m[1]!;
  const path = m[2]!;
  const name = `${domain}/${path}`;
  if (name.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(input, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  let tag = m[3];
  let digest: Digest | undefined;
  if (m[4] !== undefined) {
    try {
      digest = parseDigest(m[4]);
    } catch (cause) {
      const err = invalid(input, `bad digest: ${(cause as Error).message}`);
      (err as { cause?: unknown }).cause = cause;
      throw err;
    }
  }
  if (tag === undefined && digest === undefined && options.defaultTag !== false) tag = DEFAULT_TAG;
  const suffix = (tag !== undefined ? `:${tag}` : "") + (digest !== undefined ? `@${digest}` : "");
  const familiarName = familiarNameOf(domain, path);
  const ref: Reference = {
    domain,
    path,
    name,
    string: name + suffix,
    familiar: familiarName + suffix,
    familiarName,
  };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/**
 * Parse a reference WITHOUT Docker's normalisation (distribution's `Parse`):
 * `ubuntu` stays `ubuntu`, no default tag. Useful to validate names other
 * tools wrote.
 * @throws InvalidArgumentError `ERR_INVALID_REFERENCE`
 */
export function parseReferenceStrict(input: string): { name: string; tag?: string; digest?: Digest } {
  const m = LOOSE_REFERENCE_RE.exec(input);
  if (!m) {
    if (input !== "" && LOOSE_REFERENCE_RE.test(input.toLowerCase())) throw invalid(input, "repository name must be lowercase");
    throw invalid(input, "invalid reference format");
  }
  if (m[1]!.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(input, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  const out: { name: string; tag?: string; digest?: Digest } = { name: m[1]! };
  if (m[2] !== undefined) out.tag = m[2];
  if (m[3] !== undefined) {
    try {
      out.digest = parseDigest(m[3]);
    } catch (cause) {
      throw invalid(input, `bad digest: ${(cause as Error).message}`);
    }
  }
  return out;
}

/** Normalised string of a reference: `parseReference(s).string`. */
export function normalizeReference(input: string, options?: ParseReferenceOptions): string {
  return parseReference(input, options).string;
}

/** Docker's short display form of a reference: `parseReference(s).familiar`. */
export function familiarReference(input: string): string {
  return parseReference(input).familiar;
}

/** True when `s` is a valid tag (`[\w][\w.-]{0,127}`). */
export function isValidTag(s: string): boolean {
  return TAG_RE.test(s);
}

/**
 * True when `s` can only be an image ID or ID prefix, never a name: a full
 * `sha256:<64 hex>` digest or 64 hex characters. (Shorter hex strings such as
 * `abc123` are valid names too; `resolve` tries them as names first, like Docker.)
 */
export function isImageIdLike(s: string): boolean {
  return IDENTIFIER_RE.test(s) || /^sha256:[a-f0-9]{1,64}$/.test(s);
}

/** True when `s` looks like a short image ID (6–64 hex characters, optionally `sha256:`-prefixed). */
export function isShortIdLike(s: string): boolean {
  const hex = s.startsWith("sha256:") ? s.slice(7) : s;
  return SHORT_IDENTIFIER_RE.test(hex);
}

// OCI image-spec annotations.md, as skopeo (containers/image oci/internal) and
// umoci (oci/casext/refname.go) check `org.opencontainers.image.ref.name`.
const OCI_REF_COMPONENT = "[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*";
const OCI_REF_NAME_RE = new RegExp(`^${OCI_REF_COMPONENT}(?:/${OCI_REF_COMPONENT})*$`);

/**
 * True when `s` is a valid OCI layout ref name (`org.opencontainers.image.ref.name`
 * grammar, checked by skopeo's `oci:<dir>:<name>` and umoci). Most normalised
 * Docker references are; a few Docker-valid ones (`a__b`, tag `_x`) are not.
 */
export function isValidOciRefName(s: string): boolean {
  return OCI_REF_NAME_RE.test(s);
}
