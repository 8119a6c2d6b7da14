import { describe, expect, it } from "vitest";
import { comparePlatform, formatPlatform, hostPlatform, normalizeArch, ociArchitecture, parsePlatform, platformMatches } from "./platform.js";

describe("comparePlatform (containerd platforms.Only + moby rules)", () => {
  const table: Array<[string, Record<string, string>, Record<string, string>, boolean]> = [
    ["same", { os: "linux", architecture: "amd64" }, { os: "linux", architecture: "amd64" }, true],
    ["amd64 runs 386", { os: "linux", architecture: "amd64" }, { os: "linux", architecture: "386" }, true],
    ["386 does not run amd64", { os: "linux", architecture: "386" }, { os: "linux", architecture: "amd64" }, false],
    ["os differs", { os: "linux", architecture: "amd64" }, { os: "windows", architecture: "amd64" }, false],
    ["x86_64 alias", { os: "linux", architecture: "amd64" }, { os: "linux", architecture: "x86_64" }, true],
    ["amd64/v3 runs v2", { os: "linux", architecture: "amd64", variant: "v3" }, { os: "linux", architecture: "amd64", variant: "v2" }, true],
    ["amd64 does not run v2", { os: "linux", architecture: "amd64" }, { os: "linux", architecture: "amd64", variant: "v2" }, false],
    ["amd64/v1 is amd64", { os: "linux", architecture: "amd64", variant: "v1" }, { os: "linux", architecture: "amd64" }, true],
    ["arm/v7 runs v6", { os: "linux", architecture: "arm", variant: "v7" }, { os: "linux", architecture: "arm", variant: "v6" }, true],
    ["arm/v6 does not run v7", { os: "linux", architecture: "arm", variant: "v6" }, { os: "linux", architecture: "arm", variant: "v7" }, false],
    ["arm without variant is v7", { os: "linux", architecture: "arm" }, { os: "linux", architecture: "arm", variant: "v7" }, true],
    ["arm64 = arm64/v8", { os: "linux", architecture: "arm64" }, { os: "linux", architecture: "arm64", variant: "v8" }, true],
    ["arm64 runs arm/v7", { os: "linux", architecture: "arm64" }, { os: "linux", architecture: "arm", variant: "v7" }, true],
    ["arm64 does not run arm64/v8.1", { os: "linux", architecture: "arm64" }, { os: "linux", architecture: "arm64", variant: "v8.1" }, false],
    ["arm64/v8.2 runs v8.1", { os: "linux", architecture: "arm64", variant: "v8.2" }, { os: "linux", architecture: "arm64", variant: "v8.1" }, true],
    ["arm64/v9 runs v8.5", { os: "linux", architecture: "arm64", variant: "v9" }, { os: "linux", architecture: "arm64", variant: "v8.5" }, true],
    ["arm64/v9 does not run v8.6", { os: "linux", architecture: "arm64", variant: "v9" }, { os: "linux", architecture: "arm64", variant: "v8.6" }, false],
    ["aarch64 alias", { os: "linux", architecture: "arm64" }, { os: "linux", architecture: "aarch64" }, true],
    ["windows: only major.minor count", { os: "windows", architecture: "amd64", osVersion: "10.0.17763.1" }, { os: "windows", architecture: "amd64", osVersion: "10.0.20348.5" }, true],
  ];
  it.each(table)("%s", (_n, builder, image, want) => {
    expect(comparePlatform(builder, image)).toBe(want);
  });
  it("normalizeArch follows containerd", () => {
    expect(normalizeArch("armhf", "")).toEqual({ architecture: "arm", variant: "v7" });
    expect(normalizeArch("i386", "x")).toEqual({ architecture: "386", variant: "" });
    expect(normalizeArch("aarch64", "9")).toEqual({ architecture: "arm64", variant: "v9" });
  });
});

describe("platform strings and the host", () => {
  it("parsePlatform and formatPlatform round-trip", () => {
    expect(parsePlatform("linux/arm/v7")).toEqual({ os: "linux", architecture: "arm", variant: "v7" });
    expect(formatPlatform(parsePlatform("linux/amd64"))).toBe("linux/amd64");
    for (const bad of ["linux", "linux/", "Linux/amd64", "a/b/c/d", ""]) {
      expect(() => parsePlatform(bad)).toThrow(expect.objectContaining({ code: "ERR_INVALID_PLATFORM" }));
    }
  });
  it("Node architecture names map to GOARCH", () => {
    expect(ociArchitecture("x64")).toBe("amd64");
    expect(ociArchitecture("ppc64")).toBe("ppc64le");
    expect(ociArchitecture("mipsel")).toBe("mipsle");
    expect(ociArchitecture("sparc")).toBe("sparc");
    expect(hostPlatform().os).toBe("linux");
    expect(hostPlatform().architecture).toBe(ociArchitecture(process.arch));
  });
  it("platformMatches is containerd's Only(want).Match(have)", () => {
    expect(platformMatches({ os: "linux", architecture: "amd64" }, { os: "linux", architecture: "386" })).toBe(true);
    expect(platformMatches({ os: "linux", architecture: "arm64" }, { os: "linux", architecture: "amd64" })).toBe(false);
  });
});
