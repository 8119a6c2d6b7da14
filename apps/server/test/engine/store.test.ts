/**
 * The judge of issue 14's image commands: both stock docker clients against
 * `berth serve` over a real store (serveStore: @berth/image-service behind
 * the face), each recorded scenario from the same starting images as the
 * dockerd recording, pinned to the recording's API version (1.41: berth
 * shapes answers per version, so a client negotiating 1.52 rightly sees
 * other fields), comparing exit code, stdout and stderr and, for commands
 * that change the store, `docker images -a --no-trunc` afterwards.
 * Normalised: relative times, and the order of one image's rows (the CLI
 * walks a Go map of repositories, so dockerd's own order varies run to run).
 * Where berth answers differently on purpose, {@link DIFFERENT} says what and why;
 * the storage driver's name (dockerd's `vfs`, berth's `berth`) is berth's own everywhere.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI_SCENARIOS, type CliScenario, type FixtureArchives, runCli, writeFixtureArchives } from "@berth/docker-proxy";
import { exec, requirePeer } from "@berth/peers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveStore } from "../../src/index.js";
import { DOCKER_CLIS, recording } from "./helpers.js";
import { normaliseOutput } from "./replay.js";

await requirePeer("docker");

/** Scenarios judged elsewhere: the server's identity and the registry scenarios (cli.test.ts), the terminal progress bars (their own test below). */
const ELSEWHERE = new Set(["version", "info", "ps", "load-tty", ...CLI_SCENARIOS.filter((s) => s.registry).map((s) => s.name)]);

let dir: string;
let fx: FixtureArchives;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-engine-store-"));
  fx = await writeFixtureArchives(join(dir, "fixtures"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Relative times as `<ago>`, and the rows of one image (consecutive lines naming the same ID) sorted. */
function normalise(text: string): string {
  const lines = normaliseOutput(text).split("\n");
  const idOf = (line: string) => /\b(?:sha256:)?([0-9a-f]{12})[0-9a-f]*\b/.exec(line)?.[1];
  const out: string[] = [];
  for (let i = 0; i < lines.length; ) {
    const id = idOf(lines[i]!);
    let j = i + 1;
    while (id && j < lines.length && idOf(lines[j]!) === id) j++;
    out.push(...lines.slice(i, j).sort());
    i = j;
  }
  return out.join("\n");
}

/** IDs of images made by the scenario itself (not fixtures) as `<new>`: dockerd stamps an import with the time it ran. */
const newIds = (ids: Record<string, string>) => (text: string) =>
  text.replace(/sha256:[0-9a-f]{64}/g, (id) => (Object.values(ids).includes(id) ? id : "sha256:<new>"));

/** Lines of the `Deleted Images:` block sorted: dockerd's prune walks a Go map, so its order varies run to run. */
const sortDeleted = (text: string) =>
  text.replace(/Deleted Images:\n([\s\S]*?)\n\n/, (_m, block: string) => `Deleted Images:\n${block.split("\n").sort().join("\n")}\n\n`);

/**
 * What berth answers differently on purpose, per scenario: applied to both
 * sides before comparing, each with why.
 */
const DIFFERENT: Record<string, { why: string; normalise: (text: string, ids: Record<string, string>) => string }> = {
  "image-prune-all": { why: "order of a Go map walk", normalise: sortDeleted },
  import: { why: "dockerd's import config holds the time it ran, so its ID is new each run", normalise: (t, ids) => newIds(ids)(t) },
  "import-no-tag": { why: "as import", normalise: (t, ids) => newIds(ids)(t) },
  "import-change-message": { why: "as import", normalise: (t, ids) => newIds(ids)(t) },
  "load-bad-tar": { why: "berth's words for a bad archive are its own (dockerd: `Error processing tar file(exit status 1): …`)", normalise: (t) => t.replace(/^.*tar.*$/m, "<bad tar>") },
  "image-inspect-no-such": {
    why: "berth sends current dockerd's text (`No such image: x`); 20.10 said it twice, which docker 28 prints",
    normalise: (t) => t.replace("no such image: nosuch:img: No such image: nosuch:img", "No such image: nosuch:img"),
  },
};

/** The storage driver inspect shows (API < 1.45): dockerd's `vfs` here, berth's `berth`. */
const driver = (text: string) => text.replace(/("Name": )"(vfs|berth)"/g, '$1"<driver>"');

let n = 0;
/** A fresh store served on a socket, with the recordings' starting images (unless `empty`). */
async function fresh(cli: string, scenario: CliScenario) {
  const root = join(dir, `store-${++n}`);
  const server = await serveStore({ root, port: 0, socketPath: join(dir, `s${n}.sock`), log: { format: "none" } });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DOCKER_HOST: `unix://${server.socketPath}`,
    DOCKER_CONFIG: join(dir, "docker-config"),
    DOCKER_API_VERSION: "1.41",
  };
  for (const k of ["DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"]) delete env[k];
  if ((scenario.setup ?? "images") === "images") {
    const r = await exec(cli, ["load", "-q", "-i", fx.images], { env, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
  }
  return { server, env };
}

describe.each(DOCKER_CLIS)("docker $name against berth serve", (cli) => {
  it.each(CLI_SCENARIOS.filter((s) => !ELSEWHERE.has(s.name)).map((s) => [s.name, s] as const))("%s", async (_name, scenario) => {
    const rec = (await recording(scenario.name)).runs.find((r) => r.cli === cli.name)!;
    const { server, env } = await fresh(cli.path, scenario);
    try {
      const run = await runCli(cli.path, scenario, fx, env, dir);
      const ids = (await recording(scenario.name)).ids;
      const own = DIFFERENT[scenario.name]?.normalise ?? ((t: string) => t);
      const norm = (t: string) => own(driver(normalise(t)), ids);
      const got = { exitCode: run.exitCode, stdout: norm(run.stdout), stderr: norm(run.stderr) };
      const want = { exitCode: rec.exitCode, stdout: norm(rec.stdout), stderr: norm(rec.stderr) };
      if (scenario.after) {
        // the listing's column widths follow its CREATED texts ("3 seconds ago" then, "About a
        // minute ago" now on a slow run): compare cells, not padding
        const cells = (t: string) => norm(t).replace(/ {2,}/g, "  ");
        Object.assign(got, { after: cells((await exec(cli.path, scenario.after, { env })).stdout) });
        Object.assign(want, { after: cells(rec.after ?? "") });
      }
      expect(got).toEqual(want);
    } finally {
      await server.close();
    }
  });
});

describe("dockerode against berth serve", () => {
  it("listImages, getImage().inspect/history/tag/remove, pruneImages, df, ping, version", async () => {
    const Docker = (await import("dockerode")).default;
    const { server } = await fresh("/usr/bin/docker", { name: "dockerode", args: [] });
    try {
      const d = new Docker({ socketPath: server.socketPath! });
      expect(String(await d.ping())).toBe("OK");
      expect((await d.version()).ApiVersion).toMatch(/^1\.\d+$/);
      const ids = (await recording("images")).ids;
      const list = await d.listImages();
      expect(list.map((i) => i.Id).sort()).toEqual([ids.app, ids.base, ids.dangling, ids.solo].sort());
      const app = list.find((i) => i.Id === ids.app)!;
      expect([...(app.RepoTags ?? [])].sort()).toEqual(["engine-rec/app:1", "localhost:5000/x/y:z"]);
      const inspect = await d.getImage("engine-rec/app:1").inspect();
      expect([inspect.Id, inspect.Parent]).toEqual([ids.app, ids.mid]);
      const history = await d.getImage("engine-rec/app:1").history();
      expect(history[0].Id).toBe(ids.app);
      await d.getImage("engine-rec/app:1").tag({ repo: "engine-rec/app", tag: "2" });
      expect((await d.getImage("engine-rec/app:2").inspect()).Id).toBe(ids.app);
      const removed = await d.getImage("engine-rec/app:2").remove();
      expect(removed).toEqual([{ Untagged: "engine-rec/app:2" }]);
      const pruned = await d.pruneImages();
      expect(pruned.ImagesDeleted?.map((x) => x.Deleted).filter(Boolean)).toContain(ids.dangling);
      expect(pruned.SpaceReclaimed).toBeGreaterThan(0);
      const df = await d.df();
      expect(df.Images.map((i: { Id: string }) => i.Id).sort()).toEqual([ids.app, ids.base, ids.solo].sort());
      expect(df.LayersSize).toBeGreaterThan(0);
      await expect(d.getImage("nosuch:img").inspect()).rejects.toMatchObject({ statusCode: 404 });
    } finally {
      await server.close();
    }
  });
});
