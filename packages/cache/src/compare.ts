/**
 * Container-config comparison of the classic builder cache (moby
 * `image/cache/compare.go`), written from its semantics. Platforms are
 * compared with `@berth/oci`'s `comparePlatform`.
 * @module
 */
import type { ContainerConfig, HealthConfig } from "@berth/image-store";
import type { PlatformSpec } from "@berth/oci";

/** A platform as the builder asks for it (OCI `Platform` with camelCase keys). */
export type BuildPlatform = PlatformSpec;

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
  return containerConfigDifference(a, b) === undefined;
}

/**
 * The first field (in moby's order of comparison) where {@link
 * compareContainerConfig} finds `a` and `b` different, e.g. `"Cmd"` or
 * `"Labels.version"`; `"config"` when one is missing; undefined when equal.
 * What a cache miss explanation names.
 */
export function containerConfigDifference(
  a: ContainerConfig | null | undefined,
  b: ContainerConfig | null | undefined,
): string | undefined {
  if (a === null || a === undefined || b === null || b === undefined) return "config";
  const lists = ["Env", "Cmd", "Entrypoint", "Shell", "ExposedPorts", "Volumes", "Labels", "OnBuild"] as const;
  for (const k of lists) if (len(a[k]) !== len(b[k])) return k;
  for (const k of ["Env", "OnBuild", "Cmd", "Entrypoint", "Shell"] as const) if (!sameList(a[k], b[k])) return k;
  for (const k of Object.keys(a.ExposedPorts ?? {})) if (!hasKey(b.ExposedPorts, k)) return `ExposedPorts.${k}`;
  for (const k of Object.keys(a.Volumes ?? {})) if (!hasKey(b.Volumes, k)) return `Volumes.${k}`;
  for (const [k, v] of Object.entries(a.Labels ?? {})) if (v !== (b.Labels?.[k] ?? "")) return `Labels.${k}`;
  const bools = ["AttachStdin", "AttachStdout", "AttachStderr", "NetworkDisabled", "Tty", "OpenStdin", "StdinOnce", "ArgsEscaped"] as const;
  for (const k of bools) if ((a[k] ?? false) !== (b[k] ?? false)) return k;
  for (const k of ["User", "WorkingDir", "StopSignal"] as const) if ((a[k] ?? "") !== (b[k] ?? "")) return k;
  const at = a.StopTimeout ?? null;
  const bt = b.StopTimeout ?? null;
  if ((at === null) !== (bt === null) || at !== bt) return "StopTimeout";
  return sameHealthcheck(a.Healthcheck, b.Healthcheck) ? undefined : "Healthcheck";
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

