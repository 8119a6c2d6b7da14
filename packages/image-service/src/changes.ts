/**
 * Dockerfile instructions applied to an image config, as `docker import --change`
 * and `docker commit --change` do.
 * @module
 */
import { InvalidArgumentError } from "@berth/digest";
import { ImageServiceErrorCode } from "./errors.js";

const invalid = (message: string) => new InvalidArgumentError(message, { code: ImageServiceErrorCode.INVALID_CHANGE });

/** The part of an image config `--change` edits (Docker's container config). */
export interface RunConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  OnBuild?: string[] | null;
  [key: string]: unknown;
}

/** Split a Dockerfile-style argument list: `a "b c" d=e` → [a, "b c", d=e]. */
function splitWords(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quote: string | undefined;
  let any = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      any = true;
    } else if (c === "\\" && i + 1 < s.length) {
      cur += s[++i];
      any = true;
    } else if (/\s/.test(c)) {
      if (any || cur) out.push(cur);
      cur = "";
      any = false;
    } else {
      cur += c;
    }
  }
  if (quote) throw invalid(`unterminated quote in ${JSON.stringify(s)}`);
  if (any || cur) out.push(cur);
  return out;
}

/** JSON (exec) form `["a","b"]` or shell form `a b` → argv, as Dockerfile CMD/ENTRYPOINT do. */
function commandForm(rest: string): string[] {
  const t = rest.trim();
  if (t.startsWith("[")) {
    try {
      const v: unknown = JSON.parse(t);
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v;
    } catch {
      // not JSON: docker treats it as shell form
    }
  }
  return ["/bin/sh", "-c", t];
}

/** KEY=VALUE pairs, or the legacy `KEY VALUE` form with a single pair. */
function keyValues(instr: string, rest: string): Array<[string, string]> {
  const words = splitWords(rest);
  if (words.length === 0) throw invalid(`${instr} needs at least one argument`);
  if (!words[0]!.includes("=")) {
    // ENV KEY value with spaces
    const m = /^\s*(\S+)\s+([\s\S]*)$/.exec(rest);
    if (!m) throw invalid(`${instr} ${rest}: expected KEY=VALUE or KEY VALUE`);
    return [[m[1]!, m[2]!.trim()]];
  }
  return words.map((w) => {
    const eq = w.indexOf("=");
    if (eq <= 0) throw invalid(`${instr}: ${JSON.stringify(w)} is not KEY=VALUE`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/**
 * Apply Dockerfile instructions as `docker import --change` / `docker commit
 * --change` do: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER,
 * VOLUME, WORKDIR. Returns a new config; the input is not modified.
 */
export function applyChanges(config: RunConfig, changes: string[]): RunConfig {
  const c: RunConfig = structuredClone(config);
  let cmdSet = false;
  for (const change of changes) {
    const m = /^\s*(\w+)\s*([\s\S]*)$/.exec(change);
    if (!m) throw invalid(`invalid --change ${JSON.stringify(change)}`);
    const instr = m[1]!.toUpperCase();
    const rest = m[2]!.trim();
    switch (instr) {
      case "ENV": {
        const env = [...(c.Env ?? [])];
        for (const [k, v] of keyValues(instr, rest)) {
          const i = env.findIndex((e) => e.split("=")[0] === k);
          if (i >= 0) env[i] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        c.Env = env;
        break;
      }
      case "LABEL":
        c.Labels = { ...(c.Labels ?? {}), ...Object.fromEntries(keyValues(instr, rest)) };
        break;
      case "CMD":
        c.Cmd = commandForm(rest);
        cmdSet = true;
        break;
      case "ENTRYPOINT":
        c.Entrypoint = commandForm(rest);
        // like the Dockerfile builder, ENTRYPOINT resets an inherited CMD unless CMD was set here
        if (!cmdSet) c.Cmd = null;
        break;
      case "WORKDIR": {
        if (!rest) throw invalid("WORKDIR needs a path");
        const base = c.WorkingDir || "/";
        c.WorkingDir = rest.startsWith("/") ? rest : `${base.replace(/\/$/, "")}/${rest}`;
        break;
      }
      case "USER":
        if (!rest) throw invalid("USER needs a user");
        c.User = rest;
        break;
      case "EXPOSE": {
        const ports = { ...(c.ExposedPorts ?? {}) };
        for (const p of splitWords(rest)) {
          if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) throw invalid(`EXPOSE: invalid port ${JSON.stringify(p)}`);
          ports[p.includes("/") ? p.toLowerCase() : `${p}/tcp`] = {};
        }
        c.ExposedPorts = ports;
        break;
      }
      case "VOLUME": {
        const vols = { ...(c.Volumes ?? {}) };
        for (const v of commandFormOrWords(rest)) vols[v] = {};
        c.Volumes = vols;
        break;
      }
      case "STOPSIGNAL":
        c.StopSignal = rest;
        break;
      case "ONBUILD":
        c.OnBuild = [...(c.OnBuild ?? []), rest];
        break;
      default:
        throw invalid(`--change: unsupported instruction ${instr} (want CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)`);
    }
  }
  return c;
}

function commandFormOrWords(rest: string): string[] {
  const t = rest.trim();
  if (t.startsWith("[")) {
    try {
      const v: unknown = JSON.parse(t);
      if (Array.isArray(v)) return v.map(String);
    } catch {
      // fall through
    }
  }
  return splitWords(t);
}
