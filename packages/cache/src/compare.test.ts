import type { ContainerConfig, ImageConfig } from "@berth/image-store";
import { describe, expect, it } from "vitest";
import { getLayerForHistoryIndex, isValidConfig, isValidParent } from "./classic.js";
import { compareContainerConfig, containerConfigDifference, entrypointMergedFromParent } from "./compare.js";

// Table after moby's compare_test.go cases, plus the nil/empty rules of Go's len().
describe("compareContainerConfig", () => {
  const ports1 = { "1111/tcp": {}, "2222/tcp": {} };
  const ports2 = { "3333/tcp": {}, "4444/tcp": {} };
  const ports3 = { "1111/tcp": {}, "2222/tcp": {}, "5555/tcp": {} };
  const vols1 = { "/test1": {} };
  const vols2 = { "/test2": {} };
  const vols3 = { "/test1": {}, "/test3": {} };
  const env1 = ["VAR1=1", "VAR2=2"];
  const env2 = ["VAR1=1", "VAR3=3"];
  const lbl1 = { LABEL1: "value1", LABEL2: "value2" };
  const lbl2 = { LABEL1: "value1", LABEL2: "value3" };
  const same: Array<[string, ContainerConfig, ContainerConfig]> = [
    ["all fields", { Cmd: ["echo", "hi"], Env: env1, ExposedPorts: ports1, Volumes: vols1, Labels: lbl1, Entrypoint: ["/bin/sh"], OnBuild: ["RUN x"], Shell: ["sh", "-c"], User: "u", WorkingDir: "/w", StopSignal: "SIGTERM", StopTimeout: 3 }, { Cmd: ["echo", "hi"], Env: env1, ExposedPorts: ports1, Volumes: vols1, Labels: lbl1, Entrypoint: ["/bin/sh"], OnBuild: ["RUN x"], Shell: ["sh", "-c"], User: "u", WorkingDir: "/w", StopSignal: "SIGTERM", StopTimeout: 3 }],
    ["null vs empty lists (Go len(nil)==0)", { Cmd: ["x"], Entrypoint: null, Env: null, Labels: null, OnBuild: null }, { Cmd: ["x"], Entrypoint: [], Env: [], Labels: {}, OnBuild: [] }],
    ["absent vs zero values", { Cmd: ["x"] }, { Cmd: ["x"], Tty: false, User: "", WorkingDir: "", ArgsEscaped: false }],
    ["container-specific fields ignored", { Cmd: ["x"], Image: "a", Hostname: "h1", Domainname: "d1", MacAddress: "m1" }, { Cmd: ["x"], Image: "b", Hostname: "h2", Domainname: "d2", MacAddress: "m2" }],
    ["healthcheck equal", { Healthcheck: { Test: ["CMD", "true"], Interval: 5, Retries: 2 } }, { Healthcheck: { Test: ["CMD", "true"], Interval: 5, Retries: 2 } }],
  ];
  const differ: Array<[string, ContainerConfig, ContainerConfig]> = [
    ["cmd", { Cmd: ["echo", "hi"] }, { Cmd: ["echo", "ho"] }],
    ["cmd length", { Cmd: ["echo"] }, { Cmd: ["echo", "hi"] }],
    ["env", { Env: env1 }, { Env: env2 }],
    ["env order", { Env: env1 }, { Env: [...env1].reverse() }],
    ["ports", { ExposedPorts: ports1 }, { ExposedPorts: ports2 }],
    ["ports count", { ExposedPorts: ports1 }, { ExposedPorts: ports3 }],
    ["volumes", { Volumes: vols1 }, { Volumes: vols2 }],
    ["volumes count", { Volumes: vols1 }, { Volumes: vols3 }],
    ["labels", { Labels: lbl1 }, { Labels: lbl2 }],
    ["entrypoint", { Entrypoint: ["/bin/sh"] }, { Entrypoint: ["/bin/bash"] }],
    ["entrypoint set vs empty", { Entrypoint: ["/bin/sh"] }, { Entrypoint: [] }],
    ["onbuild", { OnBuild: ["RUN a"] }, { OnBuild: ["RUN b"] }],
    ["shell", { Shell: ["sh", "-c"] }, { Shell: ["bash", "-c"] }],
    ["user", { User: "a" }, { User: "b" }],
    ["workdir", { WorkingDir: "/a" }, { WorkingDir: "/b" }],
    ["stop signal", { StopSignal: "SIGKILL" }, {}],
    ["stop timeout set vs unset", { StopTimeout: 0 }, {}],
    ["stop timeout value", { StopTimeout: 1 }, { StopTimeout: 2 }],
    ["tty", { Tty: true }, {}],
    ["open stdin", { OpenStdin: true }, {}],
    ["attach stdin", { AttachStdin: true }, {}],
    ["args escaped", { ArgsEscaped: true }, {}],
    ["network disabled", { NetworkDisabled: true }, {}],
    ["healthcheck vs none", { Healthcheck: { Test: ["NONE"] } }, {}],
    ["healthcheck test", { Healthcheck: { Test: ["CMD", "a"] } }, { Healthcheck: { Test: ["CMD", "b"] } }],
    ["healthcheck interval", { Healthcheck: { Interval: 1 } }, { Healthcheck: { Interval: 2 } }],
    ["healthcheck start interval", { Healthcheck: { StartInterval: 1 } }, { Healthcheck: {} }],
  ];
  it.each(same)("equal: %s", (_n, a, b) => {
    expect(compareContainerConfig(a, b)).toBe(true);
    expect(compareContainerConfig(b, a)).toBe(true);
  });
  it.each(differ)("different: %s", (_n, a, b) => {
    expect(compareContainerConfig(a, b)).toBe(false);
  });
  it("a label missing in b equals an empty value (Go map zero value), one way only", () => {
    expect(compareContainerConfig({ Labels: { A: "" } }, { Labels: { B: "x" } })).toBe(true);
    expect(compareContainerConfig({ Labels: { B: "x" } }, { Labels: { A: "" } })).toBe(false);
  });
  it("a missing config never matches", () => {
    expect(compareContainerConfig(undefined, {})).toBe(false);
    expect(compareContainerConfig({}, null)).toBe(false);
    expect(compareContainerConfig({}, {})).toBe(true);
  });
});

describe("entrypointMergedFromParent (docker/cli#3477)", () => {
  const probe = { Cmd: ["/bin/sh", "-c", "#(nop) ", "ENTRYPOINT []"], Entrypoint: null };
  const stored = { Cmd: probe.Cmd, Entrypoint: ["/bin/sh"] };
  it("recognises the daemon's merge of the parent's entrypoint", () => {
    expect(compareContainerConfig(stored, probe)).toBe(false);
    expect(entrypointMergedFromParent(probe, stored, { Entrypoint: null }, { Entrypoint: ["/bin/sh"] })).toBe(true);
  });
  it("does not excuse a real difference", () => {
    expect(entrypointMergedFromParent(probe, stored, { Entrypoint: null }, { Entrypoint: ["/bin/bash"] })).toBe(false);
    expect(entrypointMergedFromParent(probe, stored, { Entrypoint: ["/bin/sh"] }, { Entrypoint: ["/bin/sh"] })).toBe(false);
    expect(entrypointMergedFromParent({ Entrypoint: ["x"] }, stored, {}, { Entrypoint: ["/bin/sh"] })).toBe(false);
  });
});

describe("history matching (moby isValidParent / isValidConfig / getLayerForHistoryIndex)", () => {
  const d = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}` as never;
  const h = (by: string, empty = false, created = "2024-01-01T00:00:00Z") => ({ created, created_by: by, ...(empty ? { empty_layer: true } : {}) });
  const img = (history: ReturnType<typeof h>[], diffIds: string[]): ImageConfig =>
    ({ architecture: "amd64", os: "linux", history, rootfs: { type: "layers", diff_ids: diffIds } }) as ImageConfig;
  const target = img([h("base"), h("ENV A=1", true), h("COPY x"), h("RUN y"), h("LABEL z", true)], [d(1), d(2), d(3)]);

  it("isValidParent", () => {
    expect(isValidParent(target, undefined)).toBe(true);
    expect(isValidParent(img([], []), undefined)).toBe(false);
    expect(isValidParent(target, img([], []))).toBe(true); // empty parent = scratch
    expect(isValidParent(target, img([h("base")], [d(1)]))).toBe(true);
    expect(isValidParent(target, img([h("base"), h("ENV A=1", true)], [d(1)]))).toBe(true);
    expect(isValidParent(target, img([h("base"), h("ENV A=2", true)], [d(1)]))).toBe(false); // history differs
    expect(isValidParent(target, img([h("base", false, "2024-01-01T00:00:01Z")], [d(1)]))).toBe(false); // created differs
    expect(isValidParent(target, img([h("base")], [d(9)]))).toBe(false); // layer differs
    expect(isValidParent(target, target)).toBe(false); // not a strict prefix
    expect(isValidParent(target, img([h("base"), h("ENV A=1", true)], [d(1), d(2), d(3), d(4)]))).toBe(false); // more layers
    // Go re-marshals times: trailing zeros of the fraction do not make a difference.
    expect(isValidParent(target, img([h("base", false, "2024-01-01T00:00:00.000Z")], [d(1)]))).toBe(true);
  });

  it("isValidConfig joins Cmd with spaces (losing data, as moby does)", () => {
    expect(isValidConfig({ Cmd: ["/bin/sh", "-c", "#(nop) ", "ENV A=1"] }, { created_by: "/bin/sh -c #(nop)  ENV A=1" })).toBe(true);
    expect(isValidConfig({ Cmd: ["/bin/sh -c", "#(nop) ", "ENV A=1"] }, { created_by: "/bin/sh -c #(nop)  ENV A=1" })).toBe(true);
    expect(isValidConfig({ Cmd: ["/bin/sh", "-c", "RUN y"] }, { created_by: "RUN y" })).toBe(false);
    expect(isValidConfig({ Cmd: null }, {})).toBe(true);
  });

  it("getLayerForHistoryIndex skips empty layers", () => {
    expect(getLayerForHistoryIndex(target, 0)).toBe(d(1));
    expect(getLayerForHistoryIndex(target, 1)).toBeUndefined();
    expect(getLayerForHistoryIndex(target, 2)).toBe(d(2));
    expect(getLayerForHistoryIndex(target, 3)).toBe(d(3));
    expect(getLayerForHistoryIndex(target, 4)).toBeUndefined();
    const broken = img([h("a"), h("b")], [d(1)]);
    expect(() => getLayerForHistoryIndex(broken, 1)).toThrow(expect.objectContaining({ code: "ERR_CACHE_HISTORY_MISMATCH" }));
  });
});

describe("containerConfigDifference (what an explained miss names)", () => {
  it("names the first field moby's compare finds different, undefined when equal", () => {
    const base = { Cmd: ["sh"], Labels: { a: "1" }, ExposedPorts: { "80/tcp": {} } };
    expect(containerConfigDifference(base, { ...base })).toBeUndefined();
    expect(containerConfigDifference(base, null)).toBe("config");
    expect(containerConfigDifference(base, { ...base, Cmd: ["bash"] })).toBe("Cmd");
    expect(containerConfigDifference(base, { ...base, Labels: { a: "2" } })).toBe("Labels.a");
    expect(containerConfigDifference(base, { ...base, ExposedPorts: { "81/tcp": {} } })).toBe("ExposedPorts.80/tcp");
    expect(containerConfigDifference(base, { ...base, User: "1000" })).toBe("User");
    expect(containerConfigDifference(base, { ...base, Healthcheck: { Test: ["NONE"] } })).toBe("Healthcheck");
  });
});
