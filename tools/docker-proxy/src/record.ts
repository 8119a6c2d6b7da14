/**
 * Record dockerd's answers to every scenario, with both docker clients,
 * through the logging proxy; write one JSON file per scenario.
 *
 *   node tools/docker-proxy/dist/record.js [--out DIR] [--only name,name]
 *
 * The daemon is a private instance of @berth/peers' dockerd (its own
 * BERTH_PEERS_DIR, default /tmp/berth-engine-rec): scenarios delete every
 * image between runs and list the whole store, which must not touch, or see,
 * the images other test processes keep in the shared daemon. It is stopped at
 * the end (`--keep-daemon` leaves it running). A scenario that needs a
 * registry gets a fresh seeded docker-registry per run (registry.ts); dockerd
 * reaches it over plain http (127.0.0.0/8 registries are insecure to it).
 * @module
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type DockerPeer, exec, startDockerd, stopDockerd } from "@berth/peers";
import { type FixtureArchives, writeFixtureArchives } from "./fixtures.js";
import { type Exchange, type RecordingProxy, startRecordingProxy } from "./proxy.js";
import { seededRegistry } from "./registry.js";
import { CLI_SCENARIOS, CLIS, type CliRun, type CliScenario, prepareRun, RAW_SCENARIOS, type RawScenario, runCli } from "./scenarios.js";

const SHARED_PEERS_DIR = "/tmp/berth-peers";

/** One client's run of a scenario. */
export interface RecordedRun extends CliRun {
  cli: string;
  /** The arguments as run (placeholders resolved). */
  args: string[];
  exchanges: Exchange[];
  /** `docker images -a --no-trunc` afterwards, when the scenario asks for it. */
  after?: string;
  /** The run's registry (`127.0.0.1:PORT`), for scenarios that use one: what `{registry}` stood for. */
  registry?: string;
}

/** A recording file. */
export interface Recording {
  scenario: CliScenario;
  ids: Record<string, string>;
  runs: RecordedRun[];
}

/** A raw request's recording file. */
export interface RawRecording {
  scenario: RawScenario;
  exchanges: Exchange[];
}

/** Remove every image from the (private!) daemon, then load the fixture images unless `empty`. */
async function resetDaemon(peer: DockerPeer, fx: FixtureArchives, setup: "images" | "empty"): Promise<void> {
  if (peer.socketPath.startsWith(`${SHARED_PEERS_DIR}/`)) throw new Error("refusing to wipe the shared dockerd");
  for (let round = 0; round < 10; round++) {
    const ids = (await peer.run(["images", "-aq", "--no-trunc"])).stdout.split("\n").filter(Boolean);
    if (ids.length === 0) break;
    await peer.docker(["rmi", "-f", ...new Set(ids)]);
  }
  if (setup === "images") await peer.run(["load", "-q", "-i", fx.images]);
}

function rawRequest(socketPath: string, method: string, path: string): Promise<void> {
  return new Promise((resolveReq, reject) => {
    const req = request({ socketPath, method, path }, (res) => {
      res.resume();
      res.on("end", () => resolveReq());
    });
    req.on("error", reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: "string" },
      only: { type: "string" },
      "keep-daemon": { type: "boolean" },
    },
  });
  const here = dirname(fileURLToPath(import.meta.url));
  const outDir = resolve(values.out ?? join(here, "../../../apps/server/test/engine/recordings"));
  const only = values.only ? new Set(values.only.split(",")) : undefined;
  process.env.BERTH_PEERS_DIR ||= "/tmp/berth-engine-rec";
  if (resolve(process.env.BERTH_PEERS_DIR) === SHARED_PEERS_DIR) throw new Error("record.ts needs a private daemon: set BERTH_PEERS_DIR elsewhere");

  const scratch = await mkdtemp(join(tmpdir(), "berth-engine-rec-"));
  const peer = await startDockerd();
  const fx = await writeFixtureArchives(join(scratch, "fixtures"));
  const proxySock = join(scratch, "proxy.sock");
  const proxy: RecordingProxy = await startRecordingProxy({ upstreamSocket: peer.socketPath, listen: { socketPath: proxySock } });
  const dockerConfig = join(scratch, "docker-config");
  await mkdir(dockerConfig, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: proxy.host, DOCKER_CONFIG: dockerConfig };
  for (const k of ["DOCKER_API_VERSION", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"]) delete env[k];
  await mkdir(outDir, { recursive: true });

  try {
    const clientVersions: Record<string, string> = {};
    for (const cli of CLIS) clientVersions[cli.name] = (await exec(cli.path, ["--version"])).stdout.trim();
    const server = (await peer.run(["version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}"])).stdout.trim();
    await writeFile(
      join(outDir, "index.json"),
      `${JSON.stringify({ server: `dockerd ${server}`, clients: clientVersions, ids: fx.ids, scenarios: CLI_SCENARIOS.map((s) => s.name), raw: RAW_SCENARIOS.map((s) => s.name) }, null, 2)}\n`,
    );

    for (const scenario of CLI_SCENARIOS) {
      if (only && !only.has(scenario.name)) continue;
      const runs: RecordedRun[] = [];
      for (const cli of CLIS) {
        await resetDaemon(peer, fx, scenario.setup ?? "images");
        const reg = scenario.registry ? await seededRegistry(fx) : undefined;
        if (scenario.registry && !reg) throw new Error(`${scenario.name} needs docker-registry`);
        try {
          await prepareRun(cli.path, scenario, fx, env, reg?.host);
          await proxy.take();
          const run = await runCli(cli.path, scenario, fx, env, scratch, reg?.host);
          const exchanges = await proxy.take();
          const recorded: RecordedRun = { cli: cli.name, args: scenario.args, ...run, exchanges, ...(reg ? { registry: reg.host } : {}) };
          if (scenario.after) recorded.after = (await peer.run(scenario.after)).stdout;
          runs.push(recorded);
        } finally {
          await reg?.stop();
        }
        const run = runs.at(-1)!;
        process.stdout.write(`${scenario.name} [${cli.name}]: exit ${run.exitCode}, ${run.exchanges.length} requests\n`);
      }
      const recording: Recording = { scenario, ids: fx.ids, runs };
      await writeFile(join(outDir, `${scenario.name}.json`), `${JSON.stringify(recording, null, 2)}\n`);
    }

    await resetDaemon(peer, fx, "images");
    for (const scenario of RAW_SCENARIOS) {
      if (only && !only.has(scenario.name)) continue;
      await proxy.take();
      await rawRequest(proxySock, scenario.method, scenario.path);
      const rec: RawRecording = { scenario, exchanges: await proxy.take() };
      await writeFile(join(outDir, `raw-${scenario.name}.json`), `${JSON.stringify(rec, null, 2)}\n`);
      process.stdout.write(`raw ${scenario.name}: ${rec.exchanges[0]?.status}\n`);
    }
  } finally {
    await proxy.close();
    await rm(scratch, { recursive: true, force: true });
    if (!values["keep-daemon"]) await stopDockerd();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`record: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
