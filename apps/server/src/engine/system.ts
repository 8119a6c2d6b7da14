/**
 * `/_ping`, `/version`, `/info` and `/system/df`.
 * @module
 */
import { cpus, hostname, release, totalmem } from "node:os";
import { InvalidArgumentError } from "@berth/digest";
import { BERTH_API_HEADER, BERTH_API_VERSION } from "@berth/docker-archive";
import { hostArchitecture } from "@berth/oci";
import type { EngineContext } from "./context.js";
import { EngineErrorCode } from "./errors.js";
import { boolValue, sendJson } from "./http.js";
import { type DfTypes, diskUsage } from "./shape.js";
import { API_VERSION, MIN_API_VERSION, versionBelow } from "./versions.js";

/** `uname -m` names (what dockerd reports as `Architecture` in /info). */
const UNAME_M: Record<string, string> = { x64: "x86_64", arm64: "aarch64", arm: "armv7l", ia32: "i686", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" };

/**
 * `GET/HEAD /_ping`: "OK" with the headers clients read before anything else
 * (`Api-Version`, `Ostype` and `Docker-Experimental` are on every response).
 * `Builder-Version: 1` because berth has no BuildKit (and no builder: `/build`
 * answers that berth serves images only); `Swarm: inactive`.
 */
export async function ping(ctx: EngineContext): Promise<void> {
  const { res } = ctx;
  res.setHeader("Cache-Control", "no-cache, no-store, must-revalidate");
  res.setHeader("Pragma", "no-cache");
  res.setHeader("Builder-Version", "1");
  res.setHeader("Swarm", "inactive");
  // berth's own extensions (see @berth/docker-archive's berth-api.ts); clients that do not know it ignore it
  res.setHeader(BERTH_API_HEADER, String(BERTH_API_VERSION));
  res.setHeader("Content-Type", "text/plain; charset=utf-8");
  res.statusCode = 200;
  if (ctx.req.method === "HEAD") {
    res.setHeader("Content-Length", 0);
    res.end();
    return;
  }
  res.setHeader("Content-Length", 2);
  res.end("OK");
}

/** `GET /version`: berth as the Engine component (the docker CLI prints its fields under "Server: berth"). */
export async function version(ctx: EngineContext): Promise<void> {
  const id = ctx.identity;
  const arch = hostArchitecture();
  const details = {
    ApiVersion: API_VERSION,
    Arch: arch,
    BuildTime: id.buildTime ?? "",
    Experimental: "false",
    GitCommit: id.gitCommit ?? "",
    GoVersion: `node ${process.version}`,
    KernelVersion: release(),
    MinAPIVersion: MIN_API_VERSION,
    Os: process.platform,
  };
  sendJson(ctx.res, 200, {
    Platform: { Name: "berth" },
    Components: [{ Name: "Engine", Version: id.version, Details: details }],
    Version: id.version,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: details.GitCommit,
    GoVersion: details.GoVersion,
    Os: details.Os,
    Arch: arch,
    KernelVersion: details.KernelVersion,
    BuildTime: details.BuildTime,
  });
}

/**
 * `GET /info`, honest: berth's name and version, the store's image count and
 * root, no containers, no runtimes, no plugins, no swarm; the fields older
 * versions always carried are present (false / empty) for those versions.
 */
export async function info(ctx: EngineContext): Promise<void> {
  const store = await ctx.service.storeInfo();
  const v = ctx.version;
  const body: Record<string, unknown> = {
    ID: "",
    Containers: 0,
    ContainersRunning: 0,
    ContainersPaused: 0,
    ContainersStopped: 0,
    Images: store.images,
    Driver: "berth",
    DriverStatus: [["Store root", store.root]],
    Plugins: { Volume: [], Network: [], Authorization: null, Log: [] },
    MemoryLimit: false,
    SwapLimit: false,
    CpuCfsPeriod: false,
    CpuCfsQuota: false,
    CPUShares: false,
    CPUSet: false,
    PidsLimit: false,
    IPv4Forwarding: false,
    Debug: false,
    NFd: 0,
    OomKillDisable: false,
    NGoroutines: 0,
    SystemTime: new Date().toISOString(),
    LoggingDriver: "",
    CgroupDriver: "none",
    CgroupVersion: "",
    NEventsListener: 0,
    KernelVersion: release(),
    OperatingSystem: "berth (images only)",
    OSVersion: "",
    OSType: process.platform,
    Architecture: UNAME_M[process.arch] ?? process.arch,
    IndexServerAddress: "https://index.docker.io/v1/",
    RegistryConfig: { InsecureRegistryCIDRs: ["127.0.0.0/8"], IndexConfigs: {}, Mirrors: [] },
    NCPU: cpus().length,
    MemTotal: totalmem(),
    GenericResources: null,
    DockerRootDir: store.root,
    HttpProxy: "",
    HttpsProxy: "",
    NoProxy: "",
    Name: hostname(),
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: ctx.identity.version,
    Runtimes: {},
    DefaultRuntime: "",
    Swarm: { NodeID: "", NodeAddr: "", LocalNodeState: "inactive", ControlAvailable: false, Error: "", RemoteManagers: null },
    LiveRestoreEnabled: false,
    Isolation: "",
    InitBinary: "",
    ContainerdCommit: { ID: "" },
    RuncCommit: { ID: "" },
    InitCommit: { ID: "" },
    SecurityOptions: [],
    // the CLI prints dockerd's "no memory limit support"-style warnings when this is empty; one true line instead
    Warnings: ["WARNING: berth serves images only: no containers, volumes, networks or builds"],
  };
  // 1.47: RegistryConfig's AllowNondistributableArtifacts* omitted
  if (versionBelow(v, "1.47")) {
    Object.assign(body.RegistryConfig as object, { AllowNondistributableArtifactsCIDRs: null, AllowNondistributableArtifactsHostnames: null });
  }
  // 1.49: the commits' Expected omitted
  if (versionBelow(v, "1.49")) for (const k of ["ContainerdCommit", "RuncCommit", "InitCommit"]) (body[k] as Record<string, string>).Expected = "";
  // 1.50: BridgeNfIptables / BridgeNfIp6tables omitted
  if (versionBelow(v, "1.50")) Object.assign(body, { BridgeNfIptables: false, BridgeNfIp6tables: false });
  // 1.52: KernelMemoryTCP removed (always false before); 1.42: KernelMemory omitted when unsupported
  if (versionBelow(v, "1.52")) body.KernelMemoryTCP = false;
  sendJson(ctx.res, 200, body);
}

const DF_TYPES: Record<string, keyof DfTypes> = { image: "images", container: "containers", volume: "volumes", "build-cache": "buildCache" };

/** `GET /system/df` (`type` from 1.42, `verbose` from 1.52). */
export async function systemDf(ctx: EngineContext): Promise<void> {
  const requested = ctx.query.getAll("type");
  const all = versionBelow(ctx.version, "1.42") || requested.length === 0;
  const types: DfTypes = { images: all, containers: all, volumes: all, buildCache: all };
  if (!all) {
    for (const t of requested) {
      const k = DF_TYPES[t];
      if (!k) throw new InvalidArgumentError(`unknown object type: ${t}`, { code: EngineErrorCode.InvalidParameter });
      types[k] = true;
    }
  }
  const verbose = !versionBelow(ctx.version, "1.52") && boolValue(ctx.query, "verbose");
  const du = types.images ? await ctx.service.diskUsage() : { layersSize: 0, images: [], reclaimable: 0 };
  sendJson(ctx.res, 200, diskUsage(ctx.version, du, types, verbose));
}
