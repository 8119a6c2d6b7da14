#!/usr/bin/env node
/**
 * The `berth` bin (`dist/berth.js`): runs the CLI bundle `dist/cli.cjs`
 * (`bundle.mjs` makes both) from V8's code cache, so that a command does not
 * compile the 1 MB bundle again each time it starts.
 *
 * Why: compiling the bundle was 15–20 ms of the ~90 ms every command takes to
 * start, and in `berth load -i` it competes for the cores with the worker
 * threads starting beside it. Node 22 has a compile cache built in
 * (`module.enableCompileCache`); Node 20, which berth supports, does not. The
 * package made for it (v8-compile-cache) caches every module `require` loads
 * in a shared temp directory (`/tmp`); berth has one script to cache, and
 * keeps its cache where only the user writes (below).
 *
 * The cache is one file per bundle content, Node version and architecture, in
 * `$XDG_CACHE_HOME/berth` (else `~/.cache/berth`): a directory of the user's
 * own, never a shared one such as `/tmp`, since what it holds runs as code.
 * It is written once, after the bundle compiled and before it runs (tmp file +
 * rename, so a reader never sees half of one); V8 refuses a cache that does not
 * fit (another V8, other flags), which is then written anew. Any failure to
 * read or write it only means no cache. `BERTH_COMPILE_CACHE=0` (or Node's
 * `NODE_DISABLE_COMPILE_CACHE`) turns it off, `BERTH_COMPILE_CACHE=DIR` puts it
 * in DIR; `BERTH_DEBUG_COMPILE_CACHE=1` says on stderr whether it was used.
 * @module
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire, Module } from "node:module";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Script } from "node:vm";

/** Cache files of other bundles (older builds, other Node versions) are removed after this long unused. */
const STALE_MS = 7 * 24 * 3600 * 1000;
const CACHE_FILE_RE = /^cli-[0-9a-f]{16}\.v8cache(\.\d+\.tmp)?$/;

function cacheDir(): string | undefined {
  const env = process.env;
  if (env.BERTH_COMPILE_CACHE === "0" || env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  if (env.BERTH_COMPILE_CACHE) return env.BERTH_COMPILE_CACHE;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, "berth");
  const home = homedir();
  return home ? join(home, ".cache", "berth") : undefined;
}

/** Write `data` as `file` (tmp + rename) and remove stale cache files beside it; failures are ignored. */
function save(file: string, data: Buffer): void {
  const dir = dirname(file);
  try {
    // Two levels, not `recursive` (which spins forever where a parent never
    // appears, as under /proc: Node 20's mkdirp retries on ENOENT).
    for (const d of [dirname(dir), dir]) {
      try {
        mkdirSync(d, { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
    }
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, file);
    const now = Date.now();
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (p !== file && CACHE_FILE_RE.test(name) && now - statSync(p).mtimeMs > STALE_MS) rmSync(p, { force: true });
    }
  } catch {
    // a cache that cannot be written is no cache
  }
}

const bundle = fileURLToPath(new URL("./cli.cjs", import.meta.url));
const bytes = readFileSync(bundle);
// ASCII only (bundle.mjs checks): latin1 is the same text, decoded faster than UTF-8.
const source = bytes.toString("latin1");
const dir = cacheDir();
// V8 checks a cache against the source's length only: the name says whose content it is.
const file = dir === undefined ? undefined : join(dir, `cli-${createHash("sha256").update(`${process.version} ${process.arch}\n`).update(bytes).digest("hex").slice(0, 16)}.v8cache`);
let cachedData: Buffer | undefined;
try {
  if (file) cachedData = readFileSync(file);
} catch {
  // none yet
}
const script = new Script(Module.wrap(source), { filename: bundle, ...(cachedData ? { cachedData } : {}) });
const status = cachedData === undefined ? "miss" : script.cachedDataRejected ? "rejected" : "hit";
if (process.env.BERTH_DEBUG_COMPILE_CACHE === "1") process.stderr.write(`berth: compile cache ${status}${file ? ` (${file})` : " (off)"}\n`);
if (file && status !== "hit") save(file, script.createCachedData());

// Run it as Node runs a CommonJS module (the bundle requires only Node's built-ins).
const run = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: { exports: object }, filename: string, dirname: string) => void;
const mod = { exports: {} };
run.call(mod.exports, mod.exports, createRequire(bundle), mod, bundle, dirname(bundle));
