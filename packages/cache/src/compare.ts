/**
 * Container-config and platform comparison of the classic builder cache
 * (moby `image/cache/compare.go`), written from its semantics.
 * @module
 */
import type { ContainerConfig, HealthConfig } from "@berth/image-store";

/** A platform as the builder asks for it (OCI `Platform` with camelCase keys). */
export interface BuildPlatform {
  os?: string;
  architecture?: string;
  variant?: string;
  osVersion?: string;
  osFeatures?: string[];
}

function len(v: readonly unknown[] | Record<string, unknown> | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return Array.isArray(v) ? v.length : Object.keys(v).length;
}

function sameList(a: readonly string[] | null | undefined, b: readonly string[] | null | undefined): boolean {
  if (len(a) !== len(b)) return false;
  for (let i = 0; i < len(a); i++) if ((a as string[])[i] !== (b as string[])[i]) return false;
  return true;
}

function hasKey(m: Record<string, unknown> | null | undefined, k: string): boolean {
  return m !== null && m !== undefined && Object.hasOwn(m, k);
}

function sameHealthcheck(a: HealthConfig | null | undefined, b: HealthConfig | null | undefined): boolean {
  const an = a === null || a === undefined;
  const bn = b === null || b === undefined;
  if (an !== bn) return false;
  if (an || bn) return true;
  const x = a as HealthConfig;
  const y = b as HealthConfig;
  return (
    (x.Interval ?? 0) === (y.Interval ?? 0) &&
    (x.StartInterval ?? 0) === (y.StartInterval ?? 0) &&
    (x.StartPeriod ?? 0) === (y.StartPeriod ?? 0) &&
    (x.Timeout ?? 0) === (y.Timeout ?? 0) &&
    (x.Retries ?? 0) === (y.Retries ?? 0) &&
    sameList(x.Test, y.Test)
  );
}

/**
 * moby's `compare(a, b)`: true when two container configs are equal for the
 * cache. Container-specific fields (Image, Hostname, Domainname, MacAddress) are
 * ignored. A missing config (`null`/`undefined`) never matches. Lists and maps
 * compare by length first, so `null` and `[]` / `{}` are equal, exactly as Go's
 * `len(nil) == 0`. Env, Cmd, Entrypoint, Shell and OnBuild compare in order;
 * ExposedPorts and Volumes by keys (`a`'s keys must be in `b`); Labels by
 * value (a label of `a` missing in `b` equals `""` in Go, so it matches an empty
 * value). Booleans and strings compare with Go's zero values for absent fields.
 */
export function compareContainerConfig(
  a: ContainerConfig | null | undefined,
  b: ContainerConfig | null | undefined,
): boolean {
  if (a === null || a === undefined || b === null || b === undefined) return false;
  if (len(a.Env) !== len(b.Env)) return false;
  if (len(a.Cmd) !== len(b.Cmd)) return false;
  if (len(a.Entrypoint) !== len(b.Entrypoint)) return false;
  if (len(a.Shell) !== len(b.Shell)) return false;
  if (len(a.ExposedPorts) !== len(b.ExposedPorts)) return false;
  if (len(a.Volumes) !== len(b.Volumes)) return false;
  if (len(a.Labels) !== len(b.Labels)) return false;
  if (len(a.OnBuild) !== len(b.OnBuild)) return false;
  if (!sameList(a.Env, b.Env) || !sameList(a.OnBuild, b.OnBuild) || !sameList(a.Cmd, b.Cmd)) return false;
  if (!sameList(a.Entrypoint, b.Entrypoint) || !sameList(a.Shell, b.Shell)) return false;
  for (const k of Object.keys(a.ExposedPorts ?? {})) if (!hasKey(b.ExposedPorts, k)) return false;
  for (const k of Object.keys(a.Volumes ?? {})) if (!hasKey(b.Volumes, k)) return false;
  for (const [k, v] of Object.entries(a.Labels ?? {})) if (v !== (b.Labels?.[k] ?? "")) return false;
  const bools = ["AttachStdin", "AttachStdout", "AttachStderr", "NetworkDisabled", "Tty", "OpenStdin", "StdinOnce", "ArgsEscaped"] as const;
  for (const k of bools) if ((a[k] ?? false) !== (b[k] ?? false)) return false;
  for (const k of ["User", "WorkingDir", "StopSignal"] as const) if ((a[k] ?? "") !== (b[k] ?? "")) return false;
  const at = a.StopTimeout ?? null;
  const bt = b.StopTimeout ?? null;
  if ((at === null) !== (bt === null) || at !== bt) return false;
  return sameHealthcheck(a.Healthcheck, b.Healthcheck);
}

/**
 * The docker/cli#3477 situation: the probe says `ENTRYPOINT []` (the parser
 * turns `[]` into an empty, i.e. nil, list), but the daemon filled the build
 * container's Entrypoint from the parent image when it was created (moby
 * `daemon/commit.go` `merge`: an empty Entrypoint takes the image's), so the
 * stored `container_config.Entrypoint` is the parent's and never compares equal.
 *
 * True when exactly that happened: the probe's Entrypoint is empty, the stored
 * one is non-empty and equals the parent config's Entrypoint, and the cached
 * image's own resulting config has no Entrypoint.
 */
export function entrypointMergedFromParent(
  probe: ContainerConfig,
  stored: ContainerConfig,
  cachedImageConfig: ContainerConfig | null | undefined,
  parentConfig: ContainerConfig | null | undefined,
): boolean {
  if (len(probe.Entrypoint) !== 0 || len(stored.Entrypoint) === 0) return false;
  if (len(cachedImageConfig?.Entrypoint) !== 0) return false;
  return sameList(stored.Entrypoint, parentConfig?.Entrypoint);
}

// ---------------------------------------------------------------------------
// Platforms (containerd `platforms.Only(p).Match(q)`, as moby's comparePlatform uses it)

/** containerd's `normalizeArch`. */
export function normalizeArch(architecture: string, variant: string): { architecture: string; variant: string } {
  let arch = architecture.toLowerCase();
  let v = variant.toLowerCase();
  switch (arch) {
    case "i386":
      arch = "386";
      v = "";
      break;
    case "x86_64":
    case "x86-64":
    case "amd64":
      arch = "amd64";
      if (v === "v1") v = "";
      break;
    case "aarch64":
    case "arm64":
      arch = "arm64";
      if (v === "8" || v === "v8" || v === "v8.0") v = "";
      else if (v === "9" || v === "9.0" || v === "v9.0") v = "v9";
      break;
    case "armhf":
      arch = "arm";
      v = "v7";
      break;
    case "armel":
      arch = "arm";
      v = "v6";
      break;
    case "arm":
      if (v === "" || v === "7") v = "v7";
      else if (v === "5" || v === "6" || v === "8") v = `v${v}`;
      break;
  }
  return { architecture: arch, variant: v };
}

/** The OS node runs on, in Go's GOOS spelling. */
function hostOs(): string {
  return process.platform === "win32" ? "windows" : process.platform;
}

/** The architecture node runs on, in Go's GOARCH spelling. */
export function hostArchitecture(): string {
  const map: Record<string, string> = { x64: "amd64", ia32: "386", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64", loong64: "loong64", mips: "mips", mipsel: "mipsle" };
  return map[process.arch] ?? process.arch;
}

/** The platform a build on this host targets by default (linux/<host arch>). */
export function defaultBuildPlatform(): BuildPlatform {
  return { os: "linux", architecture: hostArchitecture() };
}

interface NormPlatform {
  os: string;
  architecture: string;
  variant: string;
  osVersion: string;
  osFeatures: string[];
}

/** containerd's `Normalize` (an empty OS is the host's, as Go's runtime.GOOS). */
export function normalizePlatform(p: BuildPlatform): NormPlatform {
  let os = (p.os ?? "") === "" ? hostOs() : (p.os as string).toLowerCase();
  if (os === "macos") os = "darwin";
  const { architecture, variant } = normalizeArch(p.architecture ?? "", p.variant ?? "");
  const osFeatures = [...new Set(p.osFeatures ?? [])].sort();
  return { os, architecture, variant, osVersion: p.osVersion ?? "", osFeatures };
}

const ARM64_VERSIONS: Record<string, { major: number[]; minor: number[] }> = {
  v8: { major: [8], minor: [0] },
  "v8.0": { major: [8], minor: [0] },
  ...Object.fromEntries([1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => [`v8.${n}`, { major: [8], minor: [n] }])),
  v9: { major: [9, 8], minor: [0, 5] },
  "v9.0": { major: [9, 8], minor: [0, 5] },
  ...Object.fromEntries([1, 2, 3, 4, 5, 6, 7].map((n) => [`v9.${n}`, { major: [9, 8], minor: [n, Math.min(n + 5, 9)] }])),
};

function goAtoiVariant(variant: string): number | undefined {
  const s = variant.startsWith("v") ? variant.slice(1) : variant;
  return /^[+-]?\d+$/.test(s) ? Number.parseInt(s, 10) : undefined;
}

/** containerd's `platformVector`: the platform and those it can also run. */
function platformVector(p: NormPlatform): NormPlatform[] {
  const base = { os: p.os, osVersion: p.osVersion, osFeatures: p.osFeatures };
  let vector: NormPlatform[] = [p];
  switch (p.architecture) {
    case "amd64": {
      const v = goAtoiVariant(p.variant);
      if (v !== undefined && v > 1) for (let n = v - 1; n >= 1; n--) vector.push({ ...base, architecture: "amd64", variant: `v${n}` });
      vector.push({ ...base, architecture: "386", variant: "" });
      break;
    }
    case "arm": {
      const v = goAtoiVariant(p.variant);
      if (v !== undefined && v > 5) for (let n = v - 1; n >= 5; n--) vector.push({ ...base, architecture: "arm", variant: `v${n}` });
      break;
    }
    case "arm64": {
      let variant = p.variant === "" ? "v8" : p.variant;
      vector = [];
      const versions = ARM64_VERSIONS[variant];
      if (!versions) break;
      versions.major.forEach((major, i) => {
        for (let minor = versions.minor[i] as number; minor >= 0; minor--) {
          vector.push({ ...base, architecture: "arm64", variant: minor === 0 ? `v${major}` : `v${major}.${minor}` });
        }
      });
      if (variant.startsWith("v8") || variant.startsWith("v9")) variant = "v8";
      vector.push(...platformVector(normalizePlatform({ ...base, architecture: "arm", variant })));
      break;
    }
  }
  return vector;
}

function windowsBuild(osVersion: string): string | undefined {
  const parts = osVersion.split(".");
  return parts.length >= 3 ? parts.slice(0, 3).join(".") : undefined;
}

/** containerd's `NewMatcher(want).Match(have)`. */
function matchOne(want: NormPlatform, have: BuildPlatform): boolean {
  const n = normalizePlatform(have);
  // The arm64 vector entries carry un-normalized variants ("v8"), normalize them too.
  const w = { ...want, ...normalizeArch(want.architecture, want.variant) };
  if (w.os !== n.os || w.architecture !== n.architecture || w.variant !== n.variant) return false;
  if (w.os === "windows" && w.osVersion !== "") {
    // containerd's windowsVersionMatcher: same major.minor.build when both say one.
    const a = windowsBuild(w.osVersion);
    const b = windowsBuild(n.osVersion);
    if (a !== undefined && b !== undefined && a !== b) return false;
  }
  if (n.osFeatures.length === 0) return true;
  const wf = w.os === "windows" ? w.osFeatures.filter((f) => f !== "win32k") : w.osFeatures;
  const hf = w.os === "windows" ? n.osFeatures.filter((f) => f !== "win32k") : n.osFeatures;
  return hf.every((f) => wf.includes(f));
}

/**
 * moby's `comparePlatform(builder, image)`: containerd's
 * `platforms.Only(builder).Match(image)` (an amd64 builder also accepts 386,
 * arm/v7 accepts v6 and v5, arm64 accepts lower v8.x and arm/v8..v5; variants
 * are normalized, e.g. `arm64/v8` = `arm64`), where for Windows only the major.minor of
 * the OS version count (moby#47307).
 */
export function comparePlatform(builder: BuildPlatform, image: BuildPlatform): boolean {
  const img = { ...image };
  if ((builder.os ?? "") === "windows" && img.os === builder.os) {
    // Keep only the image's major.minor: its build and revision become the builder's.
    const bp = (builder.osVersion ?? "").split(".");
    const ip = (img.osVersion ?? "").split(".");
    if (bp.length >= 3 && ip.length >= 3) {
      bp[0] = ip[0] as string;
      bp[1] = ip[1] as string;
      img.osVersion = bp.join(".");
    }
  }
  return platformVector(normalizePlatform(builder)).some((want) => matchOne(want, img));
}
