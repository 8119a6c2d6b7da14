/**
 * Platforms: the host's in OCI spelling, docker's `--platform` strings, and
 * containerd's platform normalisation and matching (`platforms.Normalize`,
 * `platforms.Only(p).Match(q)`), with moby's rule for Windows versions.
 * Written from their semantics.
 * @module
 */
import { InvalidArgumentError } from "@berth/digest";

/** A platform as a builder or client asks for it (OCI `Platform` with camelCase keys; empty fields mean "any"/host). */
export interface PlatformSpec {
  os?: string;
  architecture?: string;
  variant?: string;
  osVersion?: string;
  osFeatures?: string[];
}

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

/** The OS Node runs on, in Go's GOOS spelling. */
export function hostOs(): string {
  return process.platform === "win32" ? "windows" : process.platform;
}

/** Node's `process.arch` names in Go's GOARCH spelling (what OCI platforms use). */
const GOARCH: Record<string, string> = {
  x64: "amd64",
  ia32: "386",
  arm64: "arm64",
  arm: "arm",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
  mips: "mips",
  mipsel: "mipsle",
};

/** An architecture as Node names it (`process.arch`), in Go's GOARCH spelling. */
export function ociArchitecture(nodeArch: string): string {
  return GOARCH[nodeArch] ?? nodeArch;
}

/** The architecture Node runs on, in Go's GOARCH spelling. */
export function hostArchitecture(): string {
  return ociArchitecture(process.arch);
}

/**
 * The platform images built or run here default to: `linux` (containers are
 * Linux whatever the host) on the host's architecture, with `v7` on 32-bit arm.
 */
export function hostPlatform(): { os: string; architecture: string; variant?: string } {
  return { os: "linux", architecture: hostArchitecture(), ...(process.arch === "arm" ? { variant: "v7" } : {}) };
}

/** The platform a build on this host targets by default (linux/<host arch>). */
export function defaultBuildPlatform(): PlatformSpec {
  return { os: "linux", architecture: hostArchitecture() };
}

/** `os/arch[/variant]` as docker's `--platform` writes it. */
export function formatPlatform(p: { os?: string; architecture?: string; variant?: string }): string {
  return [p.os ?? "", p.architecture ?? "", ...(p.variant ? [p.variant] : [])].join("/");
}

/**
 * Parse docker's `--platform` value `os/arch[/variant]` (lowercase letters,
 * digits, `.`, `_`, `-`).
 * @throws InvalidArgumentError `ERR_INVALID_PLATFORM`
 */
export function parsePlatform(value: string): { os: string; architecture: string; variant?: string } {
  const parts = typeof value === "string" ? value.split("/") : [];
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !/^[a-z0-9._-]+$/.test(x))) {
    throw new InvalidArgumentError(`invalid platform ${JSON.stringify(value)} (want os/arch[/variant])`, { code: "ERR_INVALID_PLATFORM" });
  }
  return { os: parts[0]!, architecture: parts[1]!, ...(parts[2] ? { variant: parts[2] } : {}) };
}

/** An OCI platform object (`os.version`, `os.features`) or an image config as a {@link PlatformSpec}. */
export function platformSpecOf(p: { os?: string; architecture?: string; variant?: string; "os.version"?: string; "os.features"?: string[] }): PlatformSpec {
  return {
    ...(p.os !== undefined ? { os: p.os } : {}),
    ...(p.architecture !== undefined ? { architecture: p.architecture } : {}),
    ...(p.variant !== undefined ? { variant: p.variant } : {}),
    ...(p["os.version"] !== undefined ? { osVersion: p["os.version"] } : {}),
    ...(p["os.features"] !== undefined ? { osFeatures: p["os.features"] } : {}),
  };
}

/** A platform after containerd's normalisation (every field present). */
export interface NormPlatform {
  os: string;
  architecture: string;
  variant: string;
  osVersion: string;
  osFeatures: string[];
}

/** containerd's `Normalize` (an empty OS is the host's, as Go's runtime.GOOS). */
export function normalizePlatform(p: PlatformSpec): NormPlatform {
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
function matchOne(want: NormPlatform, have: PlatformSpec): boolean {
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
 * containerd's `platforms.Only(want).Match(have)`: `have` runs where `want`
 * is asked for (an amd64 host also runs 386, arm/v7 runs v6 and v5, arm64
 * runs lower v8.x and arm). What a registry client uses to pick a manifest
 * from an index.
 */
export function platformMatches(want: PlatformSpec, have: PlatformSpec): boolean {
  return platformVector(normalizePlatform(want)).some((w) => matchOne(w, have));
}

/**
 * moby's `comparePlatform(builder, image)`: containerd's
 * `platforms.Only(builder).Match(image)` (an amd64 builder also accepts 386,
 * arm/v7 accepts v6 and v5, arm64 accepts lower v8.x and arm/v8..v5; variants
 * are normalized, e.g. `arm64/v8` = `arm64`), where for Windows only the major.minor of
 * the OS version count (moby#47307).
 */
export function comparePlatform(builder: PlatformSpec, image: PlatformSpec): boolean {
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
