/**
 * The stock docker clients against the face, compared with the same commands
 * recorded against dockerd, for the commands that do not need the image
 * service (version, the refusals, version pinning); over the unix socket and
 * TCP. The image commands are judged in store.test.ts.
 *
 * Normalised: the Server section's values (berth is not dockerd 20.10: its
 * version, commit, build time, Go version are its own), and the client's
 * "API version" line (the negotiated version differs: dockerd offered 1.41,
 * berth offers 1.52). Labels, order and the Client section must be equal.
 *
 * And the registry scenarios (`docker pull`, `docker push`, `docker rmi` of a
 * pulled image) replayed against `berth serve` over a real store, each run
 * with a fresh docker-registry seeded with the same bytes as in the recording
 * (`seededRegistry` of @berth/docker-proxy), pinned to the recording's API
 * version: exit code, stdout, stderr, every exchange field by field
 * (replay.ts's normalisation: the registry's port, progress bars, the
 * interleaving of layers) and `docker images` afterwards.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI_SCENARIOS, type FixtureArchives, prepareRun, seededRegistry, writeFixtureArchives } from "@berth/docker-proxy";
import { exec, requirePeer } from "@berth/peers";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_VERSION, compareVersions, MIN_API_VERSION } from "../../src/engine/index.js";
import { serveStore } from "../../src/index.js";
import { DOCKER_CLIS, recording, type Served, serve, serviceNotExpected } from "./helpers.js";
import { compareRuns, normaliseOutput, replay } from "./replay.js";

await requirePeer("docker"); // Debian's 20.10 client; a failure in CI when missing
const registryPeer = await requirePeer("docker-registry"); // the registry scenarios' peer; a failure in CI when missing

let served: Served;
let config: string;
let fx: FixtureArchives;
beforeAll(async () => {
  served = await serve({ service: serviceNotExpected(), identity: { version: "9.9.9-test" } });
  config = await mkdtemp(join(tmpdir(), "berth-engine-cli-"));
  fx = await writeFixtureArchives(join(config, "fixtures"));
});
afterAll(async () => {
  await served.close();
  await rm(config, { recursive: true, force: true });
});

function docker(cli: string, host: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const e: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: host, DOCKER_CONFIG: config, ...env };
  for (const k of ["DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"]) delete e[k];
  if (!env.DOCKER_API_VERSION) delete e.DOCKER_API_VERSION;
  return exec(cli, args, { env: e, timeoutMs: 60_000 });
}

/** "  Label:   value" lines → the labels of a section, in order. */
function labels(section: string): string[] {
  return section
    .split("\n")
    .map((l) => /^(\s*[^:]+):/.exec(l)?.[1])
    .filter((l): l is string => l !== undefined);
}

/** The client's most recent API version (from its downgrade note against dockerd, or its own line). */
function clientMax(recordedStdout: string): string {
  return /downgraded from ([0-9.]+)/.exec(recordedStdout)?.[1] ?? /API version:\s+([0-9.]+)/.exec(recordedStdout)![1]!;
}

describe.each(DOCKER_CLIS)("docker $name", ({ name, path }) => {
  const hosts = () => [served.unixHost, served.tcpHost];

  it("version: the Client section as against dockerd, the Server section berth's with dockerd's labels", async () => {
    const rec = (await recording("version")).runs.find((r) => r.cli === name)!;
    const [recClient, recServer] = rec.stdout.split("\nServer:");
    const negotiated = compareVersions(clientMax(rec.stdout), API_VERSION) < 0 ? clientMax(rec.stdout) : API_VERSION;
    for (const host of hosts()) {
      const r = await docker(path, host, ["version"]);
      expect(r.code, r.stderr).toBe(rec.exitCode);
      expect(r.stderr).toBe(rec.stderr);
      const [client, server] = r.stdout.split("\nServer:");
      const apiLine = /API version:.*\n/;
      expect(client!.replace(apiLine, "")).toBe(recClient!.replace(apiLine, ""));
      expect(client).toMatch(new RegExp(`API version:\\s+${negotiated.replace(".", "\\.")}\\n`));
      const engine = server!.split(/\n (?=\S)/)[1]!; // the Engine component's block
      const recEngine = recServer!.split(/\n (?=\S)/)[1]!;
      expect(labels(engine)).toEqual(labels(recEngine));
      expect(server).toMatch(/^ berth\n Engine:\n {2}Version: {10}9\.9\.9-test\n/);
      expect(server).toContain(`API version:      ${API_VERSION} (minimum version ${MIN_API_VERSION})`);
    }
  });

  it("ps: one clear line saying berth serves images only, exit 1 (dockerd: an empty table)", async () => {
    const rec = (await recording("ps")).runs.find((r) => r.cli === name)!;
    expect([rec.exitCode, rec.stdout.split("\n")[0]]).toEqual([0, expect.stringMatching(/^CONTAINER ID\s+IMAGE/)]);
    for (const host of hosts()) {
      const r = await docker(path, host, ["ps"]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/^Error response from daemon: berth serves images only: containers are not supported \(.*\)\n$/);
    }
  });

  it.each([
    [["network", "ls"], "networks"],
    [["volume", "ls"], "volumes"],
    [["run", "--rm", "busybox"], "containers"],
  ])("%j: the same line (docker run adds its --help hint), exit non-zero", async (args, what) => {
    const r = await docker(path, served.unixHost, args);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr.split("\n")[0]).toMatch(new RegExp(`Error response from daemon: berth serves images only: ${what} are not supported`));
  });

  it("a pinned API version outside the range: dockerd's 400 text", async () => {
    const tooNew = await docker(path, served.unixHost, ["version", "--format", "{{.Server.Version}}"], { DOCKER_API_VERSION: "1.99" });
    expect(tooNew.code).not.toBe(0);
    expect(tooNew.stderr).toContain(`client version 1.99 is too new. Maximum supported API version is ${API_VERSION}`);
    const tooOld = await docker(path, served.unixHost, ["version", "--format", "{{.Server.Version}}"], { DOCKER_API_VERSION: "1.23" });
    expect(tooOld.stderr).toContain(`client version 1.23 is too old. Minimum supported API version is ${MIN_API_VERSION}`);
    const atMin = await docker(path, served.unixHost, ["version", "--format", "{{.Server.Version}}"], { DOCKER_API_VERSION: MIN_API_VERSION });
    expect([atMin.code, atMin.stdout]).toEqual([0, "9.9.9-test\n"]);
  });
});

describe("dockerode", () => {
  it("ping and version, over the unix socket and TCP", async () => {
    for (const d of [new Docker({ socketPath: served.socketPath }), new Docker({ host: "127.0.0.1", port: served.port, protocol: "http" })]) {
      expect(String(await d.ping())).toBe("OK");
      const v = await d.version();
      expect(v).toMatchObject({ ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, Version: "9.9.9-test", Platform: { Name: "berth" } });
      const pinned = new Docker({ socketPath: served.socketPath, version: "v1.41" });
      expect((await pinned.version()).ApiVersion).toBe(API_VERSION);
    }
  });

  it("a container call fails with the images-only message and status 501", async () => {
    const d = new Docker({ socketPath: served.socketPath });
    await expect(d.listContainers()).rejects.toMatchObject({ statusCode: 501, json: { message: expect.stringMatching(/^berth serves images only/) } });
  });
});

/** What berth answers differently on purpose in the registry scenarios, and why. */
const PING_EXTRAS = [
  "$[0].header.builder-version", // dockerd ≥ API 1.42 sends it; 20.10 left it out with no builder configured
  "$[0].header.swarm", // the same
];
const REGISTRY_SCENARIOS: Array<[scenario: string, opts: { allowed: string[]; replace?: Array<[RegExp, string]> }]> = [
  ["pull", { allowed: PING_EXTRAS }],
  ["pull-present", { allowed: PING_EXTRAS }],
  ["pull-no-such", { allowed: PING_EXTRAS }],
  [
    "push",
    {
      allowed: [...PING_EXTRAS, "$[1].response[8].aux.Size"],
      // the manifest of a pushed image names its layers as compressed on the way: dockerd's Go
      // compress/gzip and berth's zlib write other bytes, so its digest and size are each one's own
      replace: [
        [/digest: sha256:[0-9a-f]{64} size: \d+/g, "digest: <manifest> size: <size>"],
        [/^sha256:[0-9a-f]{64}$/g, "<manifest>"],
      ],
    },
  ],
  ["rmi-pulled", { allowed: PING_EXTRAS }],
];

describe.each(DOCKER_CLIS)("docker $name against berth serve and docker-registry, pinned to API 1.41: as dockerd", { timeout: 180_000 }, (cli) => {
  it.skipIf(!registryPeer).each(REGISTRY_SCENARIOS)("%s", async (name, opts) => {
    const scenario = CLI_SCENARIOS.find((s) => s.name === name)!;
    const rec = (await recording(name)).runs.find((r) => r.cli === cli.name)!;
    const dir = await mkdtemp(join(tmpdir(), `berth-engine-reg-${name}-`));
    const server = await serveStore({ root: join(dir, "store"), port: 0, socketPath: join(dir, "berth.sock"), log: { format: "none" }, sweepIntervalMs: 0 });
    const reg = await seededRegistry(fx);
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${server.socketPath}`, DOCKER_CONFIG: join(dir, "docker-config"), DOCKER_API_VERSION: "1.41" };
      for (const k of ["DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"]) delete env[k];
      // the recordings' starting state: the fixture images, then the scenario's own steps (a pull, a tag)
      const loaded = await exec(cli.path, ["load", "-q", "-i", fx.images], { env, timeoutMs: 60_000 });
      expect(loaded.code, loaded.stderr).toBe(0);
      await prepareRun(cli.path, scenario, fx, env, reg!.host);
      const berth = await replay(cli, scenario, { socketPath: server.socketPath!, fx, env, scratch: dir, registry: reg!.host });
      expect(compareRuns(rec, berth, opts)).toEqual([]);
      if (scenario.after) {
        // column widths follow the CREATED and REPOSITORY texts (the port's digits): compare cells, the registry named alike
        const cells = (t: string, host: string) => normaliseOutput(t.split(host).join("<registry>")).replace(/ {2,}/g, "  ");
        const rows = (t: string, host: string) => cells(t, host).split("\n").sort();
        const after = await exec(cli.path, scenario.after, { env });
        expect(rows(after.stdout, reg!.host)).toEqual(rows(rec.after ?? "", rec.registry!));
      }
    } finally {
      await reg?.stop();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
