/**
 * The docker CLI commands the Engine API face is judged by, and how one is run
 * (plain, with a file on stdin, stdout to a file, or on a pseudo-terminal).
 * The same list drives the recording against dockerd and the replay against
 * berth, so both see the same arguments against the same starting images.
 * @module
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { exec } from "@berth/peers";
import { type RecordedBody, classify } from "./body.js";
import type { FixtureArchives } from "./fixtures.js";

/** The two docker clients on this machine. */
export const CLIS = [
  { name: "28.2.2", path: "/usr/local/bin/docker" },
  { name: "20.10", path: "/usr/bin/docker" },
] as const;

/**
 * One CLI command. Arguments may hold placeholders: `{images}`, `{load}`,
 * `{bad}`, `{rootfs}` (the fixture archives), `{out}` (a file in a scratch directory),
 * `{id:KEY}` (full image ID), `{short:KEY}` (12 hex), `{prefix:KEY}` (5 hex),
 * `{registry}` (the `127.0.0.1:PORT` of the run's registry: its port differs
 * between the recording and a replay).
 */
export interface CliScenario {
  name: string;
  args: string[];
  /** Fixture archive piped to stdin. */
  stdin?: "images" | "load" | "bad" | "rootfs";
  /** stdout is a tar: record its entry list instead of its bytes. */
  stdoutTar?: boolean;
  /** Run on a pseudo-terminal (`script`), 120 columns: stdout and stderr arrive merged as stdout. */
  tty?: boolean;
  /** Starting state: the fixture images loaded (default) or nothing. */
  setup?: "images" | "empty";
  /** After the command, also record `docker images -a` (for commands that change the store). */
  after?: string[];
  /**
   * The run needs a registry: a fresh docker-registry holding the fixture
   * image `loaded` as `engine-rec/pulled:1` (registry.ts), named by `{registry}`.
   */
  registry?: boolean;
  /** docker commands run after the setup, before the command (not recorded): a pull, a tag. */
  prepare?: string[][];
}

/** One raw request sent through the proxy (not by the CLI): versions out of range, unknown paths. */
export interface RawScenario {
  name: string;
  method: string;
  path: string;
}

const IMAGES_AFTER = ["images", "-a", "--no-trunc"];
/** The listing after a pull or an rmi of a pulled image shows its digest too. */
const IMAGES_DIGESTS_AFTER = ["images", "-a", "--digests", "--no-trunc"];
const PULLED = "{registry}/engine-rec/pulled:1";

/** The commands issue 14 names, in recording order. */
export const CLI_SCENARIOS: CliScenario[] = [
  { name: "version", args: ["version"] },
  { name: "info", args: ["info"] },
  { name: "images", args: ["images"] },
  { name: "images-all", args: ["images", "-a"] },
  { name: "images-digests", args: ["images", "--digests"] },
  { name: "images-no-trunc", args: ["images", "--no-trunc"] },
  { name: "images-quiet", args: ["images", "-q"] },
  { name: "images-format-json", args: ["images", "--format", "json"] },
  { name: "images-format-template-json", args: ["images", "--format", "{{json .}}"] },
  { name: "images-filter-dangling", args: ["images", "-f", "dangling=true"] },
  { name: "images-filter-label", args: ["images", "-f", "label=org.example.engine=app"] },
  { name: "images-filter-reference", args: ["images", "-f", "reference=engine-rec/*"] },
  { name: "images-filter-before", args: ["images", "-a", "-f", "before=engine-rec/app:1"] },
  { name: "images-filter-since", args: ["images", "-f", "since=engine-rec/base:1"] },
  { name: "images-reference-arg", args: ["images", "engine-rec/base"] },
  { name: "images-reference-arg-host", args: ["images", "localhost:5000/x/y"] },
  { name: "image-inspect", args: ["image", "inspect", "engine-rec/app:1"] },
  { name: "image-inspect-host-name", args: ["image", "inspect", "localhost:5000/x/y:z"] },
  { name: "image-inspect-short-id", args: ["image", "inspect", "{short:mid}"] },
  { name: "image-inspect-prefix", args: ["image", "inspect", "{prefix:solo}"] },
  { name: "image-inspect-full-id", args: ["image", "inspect", "{id:dangling}"] },
  { name: "image-inspect-no-such", args: ["image", "inspect", "nosuch:img"] },
  { name: "history", args: ["history", "engine-rec/app:1"] },
  { name: "history-no-trunc", args: ["history", "--no-trunc", "engine-rec/app:1"] },
  { name: "history-no-such", args: ["history", "nosuch:img"] },
  { name: "tag", args: ["tag", "engine-rec/app:1", "engine-rec/app:2"], after: IMAGES_AFTER },
  { name: "tag-by-prefix", args: ["tag", "{prefix:solo}", "localhost:5000/solo:new"], after: IMAGES_AFTER },
  { name: "tag-no-such", args: ["tag", "nosuch:img", "engine-rec/x:1"] },
  { name: "rmi-untag", args: ["rmi", "engine-rec/base:latest"], after: IMAGES_AFTER },
  { name: "rmi-delete", args: ["rmi", "engine-rec/solo:1"], after: IMAGES_AFTER },
  { name: "rmi-delete-dangling-by-id", args: ["rmi", "{short:dangling}"], after: IMAGES_AFTER },
  { name: "rmi-child-conflict", args: ["rmi", "{short:mid}"], after: IMAGES_AFTER },
  { name: "rmi-multiple-repos", args: ["rmi", "{short:base}"], after: IMAGES_AFTER },
  { name: "rmi-app-prunes-parent", args: ["rmi", "engine-rec/app:1", "localhost:5000/x/y:z"], after: IMAGES_AFTER },
  { name: "rmi-no-such", args: ["rmi", "nosuch:img"] },
  { name: "save-o", args: ["save", "-o", "{out}", "engine-rec/app:1"] },
  { name: "save-stdout", args: ["save", "engine-rec/base:1"], stdoutTar: true },
  { name: "save-no-such", args: ["save", "-o", "{out}", "nosuch:img"] },
  { name: "load-i", args: ["load", "-i", "{load}"], after: IMAGES_AFTER },
  { name: "load-stdin", args: ["load"], stdin: "load" },
  { name: "load-quiet", args: ["load", "-q", "-i", "{load}"] },
  { name: "load-tty", args: ["load", "-i", "{load}"], tty: true },
  { name: "load-present", args: ["load", "-i", "{images}"] },
  { name: "load-bad-tar", args: ["load", "-i", "{bad}"] },
  { name: "import", args: ["import", "-", "engine-rec/imported:1"], stdin: "rootfs", after: IMAGES_AFTER },
  { name: "import-change-message", args: ["import", "-c", "ENV A=1", "-c", 'CMD ["/bin/hello"]', "-m", "from the fixtures", "-", "engine-rec/imported:2"], stdin: "rootfs" },
  { name: "import-no-tag", args: ["import", "-"], stdin: "rootfs" },
  { name: "image-prune", args: ["image", "prune", "-f"], after: IMAGES_AFTER },
  { name: "image-prune-nothing", args: ["image", "prune", "-f"], setup: "empty" },
  { name: "image-prune-label", args: ["image", "prune", "-f", "-a", "--filter", "label=org.example.engine=solo"], after: IMAGES_AFTER },
  { name: "image-prune-all", args: ["image", "prune", "-a", "-f"], after: IMAGES_AFTER },
  { name: "pull", args: ["pull", PULLED], registry: true, after: IMAGES_DIGESTS_AFTER },
  { name: "pull-present", args: ["pull", PULLED], registry: true, prepare: [["pull", PULLED]] },
  { name: "pull-no-such", args: ["pull", "{registry}/engine-rec/pulled:nope"], registry: true },
  {
    name: "push",
    args: ["push", "{registry}/engine-rec/pushed:1"],
    registry: true,
    prepare: [["tag", "engine-rec/app:1", "{registry}/engine-rec/pushed:1"]],
  },
  { name: "rmi-pulled", args: ["rmi", PULLED], registry: true, prepare: [["pull", PULLED]], after: IMAGES_DIGESTS_AFTER },
  { name: "system-df", args: ["system", "df"] },
  { name: "system-df-v", args: ["system", "df", "-v"] },
  { name: "ps", args: ["ps"] },
];

/** Raw requests: dockerd's answers to versions out of range and paths it does not know. */
export const RAW_SCENARIOS: RawScenario[] = [
  { name: "ping-get", method: "GET", path: "/_ping" },
  { name: "ping-head", method: "HEAD", path: "/_ping" },
  { name: "ping-versioned", method: "GET", path: "/v1.41/_ping" },
  { name: "version-unversioned", method: "GET", path: "/version" },
  { name: "version-too-new", method: "GET", path: "/v1.99/version" },
  { name: "version-too-old", method: "GET", path: "/v1.11/version" },
  { name: "version-below-1.24", method: "GET", path: "/v1.23/version" },
  { name: "unknown-path", method: "GET", path: "/v1.41/nope" },
  { name: "unknown-unversioned", method: "GET", path: "/nope" },
  { name: "wrong-method", method: "PUT", path: "/v1.41/images/json" },
  { name: "images-filters-legacy", method: "GET", path: '/v1.41/images/json?filters={"label":["org.example.engine=app"]}' },
  { name: "images-filters-bad", method: "GET", path: "/v1.41/images/json?filters={bad" },
  { name: "images-filters-unknown", method: "GET", path: '/v1.41/images/json?filters={"nosuch":{"x":true}}' },
  { name: "containers-json", method: "GET", path: "/v1.41/containers/json" },
];

/** A scenario names `{registry}` but the run has none. */
export class NoRegistryError extends Error {
  override name = "NoRegistryError";
}

/** Substitute the placeholders of a scenario's arguments; `registry` is the run's registry host (`127.0.0.1:PORT`). */
export function resolveArgs(args: readonly string[], fx: FixtureArchives, outFile: string, registry?: string): string[] {
  return args.map((a) =>
    a
      .replace("{registry}", () => {
        if (!registry) throw new NoRegistryError(`${a}: the run has no registry`);
        return registry;
      })
      .replace("{images}", fx.images)
      .replace("{load}", fx.load)
      .replace("{bad}", fx.bad)
      .replace("{rootfs}", fx.rootfs)
      .replace("{out}", outFile)
      .replace(/\{(id|short|prefix):(\w+)\}/g, (_m, kind: string, key: string) => {
        const id = fx.ids[key];
        if (!id) throw new Error(`no fixture image ${key}`);
        const hex = id.slice("sha256:".length);
        return kind === "id" ? id : kind === "short" ? hex.slice(0, 12) : hex.slice(0, 5);
      }),
  );
}

/** What one CLI run printed. */
export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** When the scenario's stdout is a tar, or `-o` wrote one: its recorded form. */
  archive?: RecordedBody;
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A scenario's `prepare` command failed. */
export class PrepareError extends Error {
  override name = "PrepareError";
}

/** Run a scenario's `prepare` commands (their output is not recorded); a failure throws. */
export async function prepareRun(cli: string, scenario: CliScenario, fx: FixtureArchives, env: NodeJS.ProcessEnv, registry?: string): Promise<void> {
  for (const cmd of scenario.prepare ?? []) {
    const r = await exec(cli, resolveArgs(cmd, fx, "", registry), { env, timeoutMs: 120_000 });
    if (r.code !== 0) throw new PrepareError(`${scenario.name}: prepare ${cmd.join(" ")}: exit ${r.code}: ${r.stderr.trim()}`);
  }
}

/** Run one scenario's command with a docker client against `host`; `registry` is the run's registry host, for `{registry}`. */
export async function runCli(
  cli: string,
  scenario: CliScenario,
  fx: FixtureArchives,
  env: NodeJS.ProcessEnv,
  scratch: string,
  registry?: string,
): Promise<CliRun> {
  const outFile = join(scratch, `${scenario.name}.out.tar`);
  const args = resolveArgs(scenario.args, fx, outFile, registry);
  const input = scenario.stdin ? await readFile(fx[scenario.stdin]) : undefined;
  let r: { code: number; stdout: string; stderr: string };
  if (scenario.tty) {
    const cmd = `stty cols 120 rows 40; ${[cli, ...args].map(shellQuote).join(" ")}`;
    r = await exec("script", ["-qfec", cmd, "/dev/null"], { env, timeoutMs: 120_000 });
  } else if (scenario.stdoutTar) {
    r = await exec(cli, args, { env, input, stdoutFile: outFile, timeoutMs: 120_000 });
  } else {
    r = await exec(cli, args, { env, input, timeoutMs: 120_000 });
  }
  const run: CliRun = { exitCode: r.code, stdout: r.stdout, stderr: r.stderr };
  if (scenario.stdoutTar || args.includes(outFile)) {
    const bytes = await readFile(outFile).catch(() => undefined);
    if (bytes) run.archive = await classify(bytes, "application/x-tar");
  }
  return run;
}
