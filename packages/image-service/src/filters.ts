/**
 * docker's image filters (`--filter key=value`, the Engine API's `filters`
 * JSON): parsed once into a predicate over images, with dockerd's rules for
 * `dangling`, `reference` (globs over familiar names), `before`/`since`
 * (an image's creation time), `label`/`label!` and `until`.
 * @module
 */
import { InvalidArgumentError } from "@berth/digest";
import { parseReference, type Store } from "@berth/image-store";
import { ImageServiceErrorCode } from "./errors.js";

/** Filters as `key → values` (repeated keys are OR-ed within `reference`, AND-ed for labels), dockerd's wire form. */
export type Filters = Readonly<Record<string, readonly string[]>>;

/** The keys `list` accepts. */
export const LIST_FILTERS = ["dangling", "reference", "before", "since", "label", "until"] as const;
/** The keys `prune` accepts. */
export const PRUNE_FILTERS = ["dangling", "label", "label!", "until"] as const;

const invalid = (message: string) => new InvalidArgumentError(message, { code: ImageServiceErrorCode.INVALID_FILTER });

/**
 * `["dangling=true", "label=a=b"]` (docker's repeated `--filter` flags) as
 * {@link Filters}.
 * @throws InvalidArgumentError `ERR_INVALID_FILTER` for an item without `=`
 */
export function parseFilterFlags(flags: readonly string[]): Filters {
  const out: Record<string, string[]> = {};
  for (const item of flags) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw invalid(`bad format of filter (expected name=value): ${item}`);
    (out[item.slice(0, eq)] ??= []).push(item.slice(eq + 1));
  }
  return out;
}

/** A compiled filter: what an image must satisfy. */
export interface ImageFilter {
  dangling?: boolean;
  /** Reference globs (any may match). */
  reference: RegExp[];
  /** Created strictly before this time (ms). */
  before?: number;
  /** Created strictly after this time (ms). */
  since?: number;
  /** Created before this time (ms). */
  until?: number;
  /** `label=k` / `label=k=v`: every one must match. */
  labels: Array<[string, string | undefined]>;
  /** `label!=k` / `label!=k=v`: none may match. */
  notLabels: Array<[string, string | undefined]>;
}

/** docker's reference glob (`path.Match`: `*` and `?` stop at `/`) as a RegExp. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (const c of glob) {
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/**
 * docker's `until` value: a duration before `now` (`24h`, `90m`, `1.5s`), unix
 * seconds, or an RFC 3339 time; as milliseconds since the epoch.
 * @throws InvalidArgumentError `ERR_INVALID_FILTER`
 */
export function parseUntil(value: string, now = Date.now()): number {
  const dur = /^(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)$/.exec(value);
  if (dur) {
    const mult: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
    return now - Number(dur[1]) * mult[dur[2]!]!;
  }
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw invalid(`invalid until filter ${JSON.stringify(value)} (want a duration like 24h or a timestamp)`);
  return t;
}

const labelPair = (value: string): [string, string | undefined] => {
  const i = value.indexOf("=");
  return i < 0 ? [value, undefined] : [value.slice(0, i), value.slice(i + 1)];
};

/**
 * Check `filters` against the keys `allowed` and compile them. `before` and
 * `since` name images, resolved in `store`.
 * @throws InvalidArgumentError `ERR_INVALID_FILTER`; NotFoundError when `before`/`since` name no image
 */
export async function compileFilters(store: Store, filters: Filters, allowed: readonly string[], now = Date.now()): Promise<ImageFilter> {
  const f: ImageFilter = { reference: [], labels: [], notLabels: [] };
  for (const [key, values] of Object.entries(filters)) {
    if (!allowed.includes(key)) throw invalid(`invalid filter '${key}' (supported: ${allowed.join(", ")})`);
    for (const value of values) {
      if (key === "dangling") {
        if (!/^(true|false|1|0)$/i.test(value)) throw invalid(`invalid filter 'dangling=${value}'`);
        f.dangling = /^(true|1)$/i.test(value);
      } else if (key === "reference") f.reference.push(globToRegExp(value));
      else if (key === "before" || key === "since") {
        const id = await store.references.resolve(value);
        const created = Date.parse((await store.images.get(id)).config.created ?? "");
        f[key] = Number.isNaN(created) ? 0 : created;
      } else if (key === "label") f.labels.push(labelPair(value));
      else if (key === "label!") f.notLabels.push(labelPair(value));
      else if (key === "until") f.until = parseUntil(value, now);
    }
  }
  return f;
}

/** True when a reference (normalized) matches one of the globs, by familiar `name:tag` or familiar name. */
export function referenceMatches(ref: string, globs: readonly RegExp[]): boolean {
  if (globs.length === 0) return true;
  const r = parseReference(ref, { defaultTag: false });
  return globs.some((g) => g.test(r.familiar) || g.test(r.familiarName));
}

/** What {@link matchesImage} needs of an image. */
export interface FilterSubject {
  created: string | undefined;
  labels: Readonly<Record<string, string>> | null | undefined;
  /** No references. */
  untagged: boolean;
}

/** True when the image passes the filter's time, dangling and label clauses (references are matched per tag). */
export function matchesImage(info: FilterSubject, f: ImageFilter): boolean {
  const created = Date.parse(info.created ?? "") || 0;
  if (f.dangling !== undefined && f.dangling !== info.untagged) return false;
  if (f.before !== undefined && !(created < f.before)) return false;
  if (f.since !== undefined && !(created > f.since)) return false;
  if (f.until !== undefined && !(created < f.until)) return false;
  const labels = info.labels ?? {};
  const has = ([k, v]: [string, string | undefined]) => k in labels && (v === undefined || labels[k] === v);
  return f.labels.every(has) && !f.notLabels.some(has);
}
