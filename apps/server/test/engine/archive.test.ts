/**
 * `docker load` and `docker save` (both clients) and dockerode's loadImage /
 * getImage().get() against the face over a real store (`archive-service.ts`),
 * compared with the recorded dockerd runs; and image IDs kept both ways
 * between berth and the real dockerd. `docker info` too (store facts only).
 * The other image commands are judged in store.test.ts.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI_SCENARIOS, classify, type FixtureArchives, writeFixtureArchives } from "@berth/docker-proxy";
import { dockerd, exec, requirePeer } from "@berth/peers";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { archiveService } from "./archive-service.js";
import { DOCKER_CLIS, recording, type Served, serve } from "./helpers.js";
import { compareRuns, replay } from "./replay.js";

await requirePeer("docker");
const peer = await dockerd();

let dir: string;
let fx: FixtureArchives;
let served: Served;
let closeStore: () => Promise<void>;
let root: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-engine-archive-"));
  fx = await writeFixtureArchives(join(dir, "fixtures"));
  root = join(dir, "store");
  const { service, close } = await archiveService(root);
  closeStore = close;
  served = await serve({ service, identity: { version: "9.9.9-test" } });
});
afterAll(async () => {
  await served?.close();
  await closeStore?.();
  await rm(dir, { recursive: true, force: true });
});

function docker(cli: string, args: string[], opts: { input?: Uint8Array; stdoutFile?: string; host?: string } = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: opts.host ?? served.unixHost, DOCKER_CONFIG: join(dir, "docker-config") };
  for (const k of ["DOCKER_API_VERSION", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"]) delete env[k];
  return exec(cli, args, { env, input: opts.input, stdoutFile: opts.stdoutFile, timeoutMs: 120_000 });
}

describe.each(DOCKER_CLIS)("docker $name", ({ name, path }) => {
  const recorded = async (scenario: string) => (await recording(scenario)).runs.find((r) => r.cli === name)!;

  it.each([
    ["load-i", ["load", "-i", "{load}"]],
    ["load-quiet", ["load", "-q", "-i", "{load}"]],
    ["load-stdin", ["load"]],
  ])("%s: stdout, stderr and exit code as dockerd's", async (scenario, args) => {
    const rec = await recorded(scenario);
    for (const host of [served.unixHost, served.tcpHost]) {
      const input = scenario === "load-stdin" ? await readFile(fx.load) : undefined;
      const r = await docker(path, args.map((a) => a.replace("{load}", fx.load)), { input, host });
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: rec.exitCode, stdout: rec.stdout, stderr: rec.stderr });
    }
  });

  it("load of a bad tar: exit 1, nothing on stdout, one error line on stderr (the words are berth's)", async () => {
    const rec = await recorded("load-bad-tar");
    const r = await docker(path, ["load", "-i", fx.bad]);
    expect([r.code, r.stdout]).toEqual([rec.exitCode, rec.stdout]);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).not.toMatch(/^Error response from daemon/); // an in-stream error, as dockerd's
  });

  it("save -o and save to stdout: an archive with the image; a missing name: dockerd's text", async () => {
    await docker(path, ["load", "-i", fx.load]);
    const out = join(dir, `save-${name}.tar`);
    const o = await docker(path, ["save", "-o", out, "engine-rec/loaded:1"]);
    expect([o.code, o.stdout, o.stderr]).toEqual([0, "", ""]);
    const stdoutFile = join(dir, `save-${name}-stdout.tar`);
    const s = await docker(path, ["save", "engine-rec/loaded:1"], { stdoutFile });
    expect([s.code, s.stderr]).toEqual([0, ""]);
    for (const file of [out, stdoutFile]) {
      const archive = await classify(await readFile(file), "application/x-tar");
      expect(archive.kind).toBe("tar");
      const names = (archive as { entries: Array<{ name: string }> }).entries.map((e) => e.name);
      expect(names).toContain("manifest.json");
      expect(names).toContain(`blobs/sha256/${fx.ids.loaded!.slice(7)}`);
    }
    const rec = await recorded("save-no-such");
    const missing = await docker(path, ["save", "-o", join(dir, "none.tar"), "nosuch:img"]);
    expect({ code: missing.code, stdout: missing.stdout, stderr: missing.stderr }).toEqual({ code: rec.exitCode, stdout: rec.stdout, stderr: rec.stderr });
  });

  it("info: exit 0, berth's store facts, one warning line", async () => {
    const r = await docker(path, ["info"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(" Server Version: 9.9.9-test\n");
    expect(r.stdout).toContain(" Storage Driver: berth\n");
    expect(r.stdout).toContain(` Docker Root Dir: ${root}\n`);
    expect(r.stdout).toMatch(/ Images: \d+\n/);
    expect(r.stderr).toBe("WARNING: berth serves images only: no containers, volumes, networks or builds\n");
  });
});

/** What berth answers differently on purpose in these exchanges, and why. */
const PING_EXTRAS = [
  "$[0].header.builder-version", // dockerd ≥ API 1.42 sends it; 20.10 left it out with no builder configured
  "$[0].header.swarm", // the same
];
const REPLAYED: Array<[scenario: string, allowed: string[]]> = [
  ["load-i", PING_EXTRAS],
  ["load-quiet", PING_EXTRAS],
  ["load-stdin", PING_EXTRAS],
  // berth's words for a bad archive are its own (dockerd: "Error processing tar file(exit status 1): …")
  ["load-bad-tar", [...PING_EXTRAS, "$.stderr", "$[1].response.error", "$[1].response.errorDetail.message"]],
  ["save-no-such", PING_EXTRAS],
  // berth sends Content-Length (it knows the archive's size), dockerd chunks; the archive's layout is berth's (Docker 25+)
  ["save-o", [...PING_EXTRAS, "$[1].header.content-length", "$[1].header.transfer-encoding"]],
];

describe.each(DOCKER_CLIS)("docker $name, pinned to API 1.41: every exchange field by field as dockerd's", (cli) => {
  beforeAll(async () => {
    // the recordings' starting state: the fixture images
    expect((await docker(cli.path, ["load", "-q", "-i", fx.images])).code).toBe(0);
  });

  it.each(REPLAYED)("%s", async (name, allowed) => {
    const scenario = CLI_SCENARIOS.find((s) => s.name === name)!;
    const rec = (await recording(name)).runs.find((r) => r.cli === cli.name)!;
    const env = { ...process.env, DOCKER_CONFIG: join(dir, "docker-config"), DOCKER_API_VERSION: "1.41" };
    const berth = await replay(cli, scenario, { socketPath: served.socketPath, fx, env, scratch: dir });
    expect(compareRuns(rec, berth, { allowed })).toEqual([]);
  });
});

describe("dockerode", () => {
  it("loadImage with followProgress, getImage().get()", async () => {
    const d = new Docker({ socketPath: served.socketPath });
    const stream = await d.loadImage(fx.load);
    const events = await new Promise<Array<Record<string, unknown>>>((resolve, reject) =>
      d.modem.followProgress(stream, (err: Error | null, out: Array<Record<string, unknown>>) => (err ? reject(err) : resolve(out))),
    );
    expect(events).toEqual([{ stream: "Loaded image: engine-rec/loaded:1\n" }]);
    const tar = await d.getImage("engine-rec/loaded:1").get();
    const chunks: Buffer[] = [];
    for await (const c of tar) chunks.push(c as Buffer);
    const archive = await classify(Buffer.concat(chunks), "application/x-tar");
    expect(archive.kind).toBe("tar");
  });

  it("loadImage of a bad archive: the in-stream error dockerd writes, as followProgress hands it over", async () => {
    const d = new Docker({ socketPath: served.socketPath });
    const stream = await d.loadImage(fx.bad);
    const out = await new Promise<Array<Record<string, unknown>>>((resolve, reject) =>
      d.modem.followProgress(stream, (e: Error | null, o: Array<Record<string, unknown>>) => (e ? reject(e) : resolve(o))),
    );
    const rec = (await recording("load-bad-tar")).runs[0]!.exchanges.at(-1)!;
    const recorded = (rec.responseBody as { value: Record<string, unknown> }).value;
    expect(out).toHaveLength(1);
    expect(Object.keys(out[0]!).sort()).toEqual(Object.keys(recorded).sort());
    const { error, errorDetail } = out[0] as { error: string; errorDetail: { message: string } };
    expect(errorDetail).toEqual({ message: error });
    expect(error).toMatch(/tar/);
  });
});

describe.skipIf(!peer)("image IDs kept between berth and the real dockerd", () => {
  it("berth's save loads into dockerd; dockerd's save loads into berth", async () => {
    const id = fx.ids.loaded!;
    const cli = "/usr/bin/docker";
    await docker(cli, ["load", "-i", fx.load]);
    const fromBerth = join(dir, "from-berth.tar");
    expect((await docker(cli, ["save", "-o", fromBerth, id.slice(7, 19)])).code).toBe(0);
    try {
      const loaded = await peer!.run(["load", "-i", fromBerth]);
      expect(loaded.stdout).toContain(id);
      const fromDockerd = join(dir, "from-dockerd.tar");
      await peer!.run(["save", "-o", fromDockerd, id]);
      const { service, close } = await archiveService(join(dir, "store2"));
      const second = await serve({ service });
      try {
        const r = await docker(cli, ["load", "-i", fromDockerd], { host: second.unixHost });
        expect([r.code, r.stdout]).toEqual([0, `Loaded image ID: ${id}\n`]);
      } finally {
        await second.close();
        await close();
      }
    } finally {
      await peer!.docker(["rmi", id]);
    }
  });
});
