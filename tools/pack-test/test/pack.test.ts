/**
 * What a user of the published packages gets: every publishable workspace
 * package packed with `pnpm pack` (which rewrites `workspace:^` and `catalog:`
 * and applies `publishConfig`), the tarballs installed with npm into a fresh
 * project beside vitest 3 and, separately, vitest 5 (any test runner must
 * install beside them: no ERESOLVE), the `./testsuite` conformance suites
 * run there under that vitest, and every README example marked
 * `<!-- example:NAME … -->` run from there, twice in a row.
 *
 * Examples that need a peer say so in their marker (`needs dockerd`, `needs
 * docker-registry`): they skip without it, and fail under BERTH_REQUIRE_PEERS=1.
 * Needs only the npm registry (and the built packages: turbo builds them first).
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { dockerd, peersDir, registry, withLock } from "@berth/peers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const repo = path.resolve(import.meta.dirname, "..", "..", "..");
const PNPM = process.env.npm_execpath?.includes("pnpm") ? [process.execPath, process.env.npm_execpath] : ["npx", "-y", "pnpm@10.34.8"];
const VITEST_MAJORS = [3, 5];

interface Pkg {
  name: string;
  dir: string;
  manifest: Record<string, unknown>;
}

/** The workspace packages that are not private (what would be published). */
function publishable(): Pkg[] {
  const out: Pkg[] = [];
  for (const group of ["packages", "apps", "tools"]) {
    for (const d of readdirSync(path.join(repo, group)).sort()) {
      const dir = path.join(repo, group, d);
      const file = path.join(dir, "package.json");
      if (!existsSync(file)) continue;
      const manifest = JSON.parse(readFileSync(file, "utf8"));
      if (!manifest.private) out.push({ name: manifest.name, dir, manifest });
    }
  }
  return out;
}

interface Example {
  pkg: string;
  name: string;
  lang: string;
  code: string;
  needs: string[];
  /** The block after "prints", when the README shows the output. */
  prints?: string;
}

/**
 * The README's runnable examples: a fenced block right after a marker
 * `<!-- example:NAME (…; needs PEER) -->` (the same markers the packages' own
 * readme tests find their example by).
 */
export function readmeExamples(pkg: string, readme: string): Example[] {
  const out: Example[] = [];
  const marker = /<!-- example:([\w-]+)([^>]*)-->\s*\n```(\w+)\n([\s\S]*?)```(\s*\n+prints\s*\n+```\n([\s\S]*?)```)?/g;
  for (const m of readme.matchAll(marker)) {
    const needs = [...(m[2] ?? "").matchAll(/needs ([\w-]+)/g)].map((n) => n[1]!);
    out.push({ pkg, name: m[1]!, lang: m[3]!, code: m[4]!, needs, ...(m[6] !== undefined ? { prints: m[6] } : {}) });
  }
  return out;
}

function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number }) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeout ?? 240_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: `${String(stderr)}${err && typeof err.code !== "number" ? `\n${err.message}` : ""}` });
      },
    );
  });
}

const pkgs = publishable();
const examples = pkgs.flatMap((p) => readmeExamples(p.name, readFileSync(path.join(p.dir, "README.md"), "utf8")));
const needs = new Set(examples.flatMap((e) => e.needs));
const docker = needs.has("dockerd") ? await dockerd() : undefined;
const reg = needs.has("docker-registry") ? await registry() : undefined;
afterAll(() => reg?.stop());
const peerEnv = (e: Example): NodeJS.ProcessEnv | undefined => {
  const env: NodeJS.ProcessEnv = {};
  for (const n of e.needs) {
    if (n === "dockerd") {
      if (!docker) return undefined;
      env.DOCKER_HOST = docker.host;
    } else if (n === "docker-registry") {
      if (!reg) return undefined;
      env.REGISTRY = reg.host;
    } else throw new Error(`${e.pkg} example ${e.name}: unknown peer ${n}`);
  }
  return env;
};

let work: string;
const tarballs = new Map<string, string>();

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), "berth-pack-test-"));
  const dest = path.join(work, "tarballs");
  await mkdir(dest);
  // pnpm pack: workspace:^ → ^0.1.0, catalog: → the version, publishConfig applied.
  // Three at a time: pnpm's start-up is most of each pack.
  const queue = [...pkgs];
  const packOne = async (p: Pkg) => {
    const r = await run(PNPM[0]!, [...PNPM.slice(1), "pack", "--pack-destination", dest], { cwd: p.dir });
    expect(r.code, `${p.name}: pnpm pack\n${r.stderr}`).toBe(0);
    const file = path.join(dest, `${p.name.replace("@", "").replace("/", "-")}-${p.manifest.version}.tgz`);
    expect(existsSync(file), `${p.name}: ${file}`).toBe(true);
    tarballs.set(p.name, file);
  };
  await Promise.all(
    [1, 2, 3].map(async () => {
      for (let p = queue.shift(); p; p = queue.shift()) await packOne(p);
    }),
  );
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("every publishable package", () => {
  it("has a README example the pack test runs", () => {
    for (const p of pkgs) expect(examples.filter((e) => e.pkg === p.name).length, `${p.name}: README has no <!-- example:… --> block`).toBeGreaterThan(0);
  });

  it("packs a package.json that resolves: no source condition, every export target in the tarball, engines, no workspace: or catalog: specifiers", async () => {
    for (const p of pkgs) {
      const tgz = tarballs.get(p.name)!;
      const files = new Set((await run("tar", ["-tzf", tgz], { cwd: work })).stdout.split("\n").filter(Boolean).map((f) => f.replace(/^package\//, "")));
      const packed = JSON.parse((await run("tar", ["-xzOf", tgz, "package/package.json"], { cwd: work })).stdout);
      expect(packed.engines?.node ?? "(no engines.node)", `${p.name}: engines.node`).toMatch(/^>=\s*20\.(1[6-9]|[2-9]\d)/);
      const targets: string[] = [];
      const walk = (v: unknown, where: string) => {
        if (typeof v === "string") targets.push(v);
        else if (v && typeof v === "object")
          for (const [k, x] of Object.entries(v)) {
            expect(k, `${p.name}: exports${where} has a "source" condition`).not.toBe("source");
            walk(x, `${where}[${JSON.stringify(k)}]`);
          }
      };
      walk(packed.exports, "");
      for (const bin of Object.values(typeof packed.bin === "string" ? { x: packed.bin } : (packed.bin ?? {}))) targets.push(bin as string);
      for (const t of targets) expect(files.has(t.replace(/^\.\//, "")), `${p.name}: ${t} is not in the tarball`).toBe(true);
      // The same subpaths as inside the monorepo: publishConfig.exports must not drift from exports.
      expect(Object.keys(packed.exports ?? {}).sort(), `${p.name}: packed export subpaths`).toEqual(Object.keys((p.manifest.exports as object) ?? {}).sort());
      for (const field of ["dependencies", "peerDependencies", "optionalDependencies"]) {
        for (const [dep, spec] of Object.entries((packed[field] ?? {}) as Record<string, string>)) {
          expect(spec, `${p.name}: ${field}.${dep}`).not.toMatch(/^(workspace|catalog):/);
        }
      }
      // What the README links to must be in the tarball (relative links only).
      const readme = readFileSync(path.join(p.dir, "README.md"), "utf8");
      for (const m of readme.matchAll(/\]\(([^)#\s]+)[^)]*\)/g)) {
        const link = m[1]!;
        if (/^[a-z]+:/.test(link)) continue;
        expect(files.has(link.replace(/^\.\//, "").replace(/\/$/, "")), `${p.name}: README links to ${link}, which the tarball lacks`).toBe(true);
      }
    }
  });
});

for (const major of VITEST_MAJORS) {
  describe(`installed with npm beside vitest ${major}`, () => {
    let project: string;

    beforeAll(async () => {
      project = path.join(work, `vitest${major}`);
      await mkdir(project);
      await writeFile(path.join(project, "package.json"), `${JSON.stringify({ name: `pack-test-vitest${major}`, private: true, type: "module" }, null, 2)}\n`);
    });

    it("npm install succeeds (no ERESOLVE, no --legacy-peer-deps)", async () => {
      const r = await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", `vitest@^${major}`, ...tarballs.values()], {
        cwd: project,
        env: { ...process.env, npm_config_legacy_peer_deps: "false", npm_config_strict_peer_deps: "false" },
        timeout: 280_000,
      });
      expect(r.code, `npm install beside vitest ${major}\n${r.stderr}`).toBe(0);
      expect(r.stderr).not.toMatch(/ERESOLVE/);
      const vitest = JSON.parse(readFileSync(path.join(project, "node_modules", "vitest", "package.json"), "utf8"));
      expect(vitest.version.split(".")[0]).toBe(String(major));
    });

    it(`the ./testsuite conformance suites run under the project's vitest ${major}`, async () => {
      // What a tool author does: run berth's suites on their own store with their own runner.
      await writeFile(
        path.join(project, "conformance.test.mjs"),
        `import { afterEach, describe, expect, it } from "vitest";
import { createMemoryLayerStore } from "@berth/layer-store";
import { contentStoreSuite, layerStoreSuite } from "@berth/layer-store/testsuite";
import { openMemoryStore } from "@berth/image-store";
import { imageStoreSuite, referenceStoreSuite } from "@berth/image-store/testsuite";

layerStoreSuite("memory", async () => ({ store: createMemoryLayerStore() }), { describe, it, expect });
contentStoreSuite("memory", async () => ({ store: createMemoryLayerStore().content }), { describe, it, expect });
const memory = async () => {
  const store = await openMemoryStore();
  return { store, cleanup: () => store.close() };
};
imageStoreSuite("memory", memory, { describe, it, expect, afterEach });
referenceStoreSuite("memory", memory, { describe, it, expect, afterEach });
`,
      );
      const r = await run(process.execPath, [path.join(project, "node_modules", "vitest", "vitest.mjs"), "run", "conformance.test.mjs"], {
        cwd: project,
        env: { ...process.env, NODE_OPTIONS: "", CI: "1", NO_COLOR: "1", FORCE_COLOR: "0", TMPDIR: work },
      });
      expect(r.code, `vitest ${major} run conformance.test.mjs\n${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/Tests\s+\d+ passed/);
    });

    for (const e of examples) {
      const env = peerEnv(e);
      it.skipIf(!env)(`${e.pkg}: README example ${e.name} runs from the tarball, twice in a row${e.needs.length ? ` (${e.needs.join(", ")})` : ""}`, async () => {
        expect(existsSync(path.join(project, "node_modules", ...e.pkg.split("/"))), `${e.pkg} is installed`).toBe(true);
        // Each example gets its own TMPDIR: the READMEs write under os.tmpdir(), and the
        // packages' own readme tests may run the same example at the same time.
        const tmp = path.join(work, `tmp-${major}-${e.pkg.replace(/\W/g, "_")}-${e.name}`);
        await mkdir(tmp, { recursive: true });
        const runEnv: NodeJS.ProcessEnv = {
          ...process.env,
          ...env,
          TMPDIR: tmp,
          BERTH_ROOT: path.join(tmp, "berth-root"),
          DOCKER_CONFIG: path.join(tmp, "docker-config"),
          PATH: `${path.join(project, "node_modules", ".bin")}${path.delimiter}${process.env.PATH}`,
          NODE_OPTIONS: "",
        };
        let cmd: string[];
        if (e.lang === "sh" || e.lang === "bash") {
          const file = path.join(project, `example-${e.name}.sh`);
          await writeFile(file, e.code);
          cmd = ["bash", "-euo", "pipefail", file];
        } else if (e.lang === "js" || e.lang === "ts") {
          // ts blocks hold plain JavaScript (Node 20 runs no TypeScript).
          const file = path.join(project, `example-${e.pkg.replace(/\W/g, "_")}-${e.name}.mjs`);
          await writeFile(file, e.code);
          cmd = [process.execPath, file];
        } else throw new Error(`${e.pkg} example ${e.name}: cannot run a ${e.lang} block`);
        const twice = async () => {
          for (const round of [1, 2]) {
            const r = await run(cmd[0]!, cmd.slice(1), { cwd: project, env: runEnv });
            expect(r.code, `${e.pkg} example ${e.name}, run ${round}:\n${r.stdout}\n${r.stderr}`).toBe(0);
            if (e.prints !== undefined) expect(r.stdout, `${e.pkg} example ${e.name}, run ${round}`).toBe(e.prints);
          }
        };
        // The one shared dockerd: the package's own readme test runs the same example (same
        // image names) perhaps at the same time; both take this lock.
        if (e.needs.includes("dockerd")) await withLock(path.join(peersDir(), `readme-example-${e.name}.lock`), 240_000, twice);
        else await twice();
      });
    }
  });
}
