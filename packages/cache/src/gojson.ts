/**
 * Byte-exact re-creation of the JSON Go's `encoding/json` writes for the image
 * configs moby's classic builder creates when it restores a `--cache-from`
 * image. The image ID is the sha256 of these bytes, so field order, omitempty
 * rules, HTML escaping and time formatting must all be Go's.
 * @module
 */
import type { ContainerConfig, History } from "@berth/image-store";

/** A JSON string as Go's encoder writes it (HTML-safe, \u2028/\u2029 escaped). */
export function goString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i] as string;
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += "\\\\";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x09) out += "\\t";
    else if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029) {
      out += `\\u${c.toString(16).padStart(4, "0")}`;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      // A lone surrogate is invalid UTF-8 in Go's eyes: written as U+FFFD.
      const next = s.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        out += ch + s[i + 1];
        i++;
      } else out += "\ufffd";
    } else out += ch;
  }
  return `${out}"`;
}

function strList(v: readonly string[] | null | undefined): string {
  if (v === null || v === undefined) return "null";
  return `[${v.map(goString).join(",")}]`;
}

function goCompare(a: string, b: string): number {
  // Go sorts map keys by their UTF-8 bytes.
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return Buffer.compare(x, y);
}

function setMap(v: Record<string, unknown> | null | undefined): string {
  if (v === null || v === undefined) return "null";
  return `{${Object.keys(v)
    .sort(goCompare)
    .map((k) => `${goString(k)}:{}`)
    .join(",")}}`;
}

function strMap(v: Record<string, string> | null | undefined): string {
  if (v === null || v === undefined) return "null";
  return `{${Object.keys(v)
    .sort(goCompare)
    .map((k) => `${goString(k)}:${goString(v[k] ?? "")}`)
    .join(",")}}`;
}

function isEmptyMap(v: Record<string, unknown> | null | undefined): boolean {
  return v === null || v === undefined || Object.keys(v).length === 0;
}

function int(v: number): string {
  if (!Number.isSafeInteger(v)) throw new RangeError(`not an integer: ${v}`);
  return String(v);
}

/**
 * `container.Config` as Go marshals it (field order of moby's
 * api/types/container Config; `omitempty` on ExposedPorts, Healthcheck,
 * ArgsEscaped, NetworkDisabled, MacAddress, StopSignal, StopTimeout, Shell).
 */
export function goContainerConfig(c: ContainerConfig | null | undefined): string {
  const cfg = c ?? {};
  const parts: string[] = [];
  const s = (k: string, v: unknown) => parts.push(`${goString(k)}:${goString(typeof v === "string" ? v : "")}`);
  const b = (k: string, v: unknown) => parts.push(`${goString(k)}:${v === true ? "true" : "false"}`);
  s("Hostname", cfg.Hostname);
  s("Domainname", cfg.Domainname);
  s("User", cfg.User);
  b("AttachStdin", cfg.AttachStdin);
  b("AttachStdout", cfg.AttachStdout);
  b("AttachStderr", cfg.AttachStderr);
  if (!isEmptyMap(cfg.ExposedPorts)) parts.push(`"ExposedPorts":${setMap(cfg.ExposedPorts)}`);
  b("Tty", cfg.Tty);
  b("OpenStdin", cfg.OpenStdin);
  b("StdinOnce", cfg.StdinOnce);
  parts.push(`"Env":${strList(cfg.Env)}`);
  parts.push(`"Cmd":${strList(cfg.Cmd)}`);
  if (cfg.Healthcheck !== null && cfg.Healthcheck !== undefined) {
    const h = cfg.Healthcheck;
    const hp: string[] = [];
    if (h.Test && h.Test.length > 0) hp.push(`"Test":${strList(h.Test)}`);
    if (h.Interval) hp.push(`"Interval":${int(h.Interval)}`);
    if (h.Timeout) hp.push(`"Timeout":${int(h.Timeout)}`);
    if (h.StartPeriod) hp.push(`"StartPeriod":${int(h.StartPeriod)}`);
    if (h.StartInterval) hp.push(`"StartInterval":${int(h.StartInterval)}`);
    if (h.Retries) hp.push(`"Retries":${int(h.Retries)}`);
    parts.push(`"Healthcheck":{${hp.join(",")}}`);
  }
  if (cfg.ArgsEscaped === true) parts.push(`"ArgsEscaped":true`);
  s("Image", cfg.Image);
  parts.push(`"Volumes":${setMap(cfg.Volumes)}`);
  s("WorkingDir", cfg.WorkingDir);
  parts.push(`"Entrypoint":${strList(cfg.Entrypoint)}`);
  if (cfg.NetworkDisabled === true) parts.push(`"NetworkDisabled":true`);
  if (cfg.MacAddress) s("MacAddress", cfg.MacAddress);
  parts.push(`"OnBuild":${strList(cfg.OnBuild)}`);
  parts.push(`"Labels":${strMap(cfg.Labels)}`);
  if (cfg.StopSignal) s("StopSignal", cfg.StopSignal);
  if (cfg.StopTimeout !== undefined && cfg.StopTimeout !== null) parts.push(`"StopTimeout":${int(cfg.StopTimeout)}`);
  if (cfg.Shell && cfg.Shell.length > 0) parts.push(`"Shell":${strList(cfg.Shell)}`);
  return `{${parts.join(",")}}`;
}

const ZERO_TIME = "0001-01-01T00:00:00Z";

/**
 * A timestamp as Go's `time.Time` re-marshals it after parsing (RFC 3339 with
 * nanoseconds, trailing zeros of the fraction dropped, `Z` for UTC). An absent
 * time is Go's zero time.
 */
export function goTime(t: string | undefined): string {
  if (t === undefined || t === "") return goString(ZERO_TIME);
  const m = /^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/.exec(t);
  if (!m) throw new RangeError(`not an RFC 3339 time: ${t}`);
  let frac = (m[3] ?? "").slice(0, 9).replace(/0+$/, "");
  if (frac !== "") frac = `.${frac}`;
  const zone = m[4] === "z" || m[4] === "Z" ? "Z" : (m[4] as string);
  return goString(`${m[1]}T${m[2]}${frac}${zone}`);
}

/** A history entry as moby's `image.History` marshals it. */
export function goHistory(h: History): string {
  const parts = [`"created":${goTime(h.created)}`];
  if (h.author) parts.push(`"author":${goString(h.author)}`);
  if (h.created_by) parts.push(`"created_by":${goString(h.created_by)}`);
  if (h.comment) parts.push(`"comment":${goString(h.comment)}`);
  if (h.empty_layer === true) parts.push(`"empty_layer":true`);
  return `{${parts.join(",")}}`;
}

/** What moby's classic builder puts into an image config it restores from a `--cache-from` image. */
export interface RestoredImageFields {
  config: ContainerConfig | null | undefined;
  architecture?: string;
  os?: string;
  author?: string;
  created?: string;
  dockerVersion?: string;
  diffIds: readonly string[];
  history: readonly History[];
  osVersion?: string;
  osFeatures?: readonly string[] | null;
}

/**
 * The config bytes of an image restored by moby's `restoreCachedImage`:
 * `json.Marshal(&image.Image{...})`, whose MarshalJSON re-marshals through a
 * map, so the top-level keys come out sorted while nested values keep struct
 * order. `container_config` is always present (a struct, not a pointer).
 */
export function goRestoredImageConfig(f: RestoredImageFields): string {
  const top: Array<[string, string]> = [];
  if (f.architecture) top.push(["architecture", goString(f.architecture)]);
  if (f.author) top.push(["author", goString(f.author)]);
  if (f.config !== null && f.config !== undefined) top.push(["config", goContainerConfig(f.config)]);
  top.push(["container_config", goContainerConfig({})]);
  top.push(["created", goTime(f.created)]);
  if (f.dockerVersion) top.push(["docker_version", goString(f.dockerVersion)]);
  if (f.history.length > 0) top.push(["history", `[${f.history.map(goHistory).join(",")}]`]);
  if (f.os) top.push(["os", goString(f.os)]);
  if (f.osFeatures && f.osFeatures.length > 0) top.push(["os.features", strList(f.osFeatures)]);
  if (f.osVersion) top.push(["os.version", goString(f.osVersion)]);
  const rootfs = f.diffIds.length > 0 ? `{"type":"layers","diff_ids":${strList(f.diffIds)}}` : `{"type":"layers"}`;
  top.push(["rootfs", rootfs]);
  top.sort((a, b) => goCompare(a[0], b[0]));
  return `{${top.map(([k, v]) => `${goString(k)}:${v}`).join(",")}}`;
}
