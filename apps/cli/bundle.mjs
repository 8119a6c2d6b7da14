// The `berth` command as one file, `dist/cli.cjs`, made from tsc's
// `dist/main.js` by esbuild after every build, and the bin that runs it,
// `dist/berth.js` (from `src/launcher.ts`: it runs the bundle from V8's code
// cache, which Node 20 has for CommonJS scripts only — hence a CommonJS bundle).
//
// Why: any verb made Node 20 resolve, read and compile ~190 ES modules of the
// workspace packages and their dependencies before doing anything — 0.25–0.30 s
// of a 0.40 s `berth --version` on the project machine, and most of a second
// `berth push` of an unchanged image (whose own work is 0.07 s). One file loads
// in a fraction of that. esbuild (one well-kept tool made for this, no plugins
// needed) rather than a hand-written concatenation.
//
// What the bundle needs beside it, in `dist/`, found relative to its own URL as
// the unbundled modules find theirs:
// - `ingest-worker.js`: the worker threads of `berth load -i` (@berth/docker-archive);
// - `write-worker.js`: the worker threads that hash and write `berth serve`'s
//   registry uploads (@berth/layer-store's off-thread writer);
// - `gzip-worker.js`: the worker threads that gzip layers for `berth push`
//   (@berth/image-service);
// - `page/app.js`: the explorer page script `berth serve` sends (@berth/server).
import { copyFile, mkdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const require = createRequire(import.meta.url);
const packageDist = (name) => dirname(require.resolve(name));

const common = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  logLevel: "warning",
  legalComments: "none",
  minifyWhitespace: true,
  minifySyntax: true,
  // bundled CommonJS dependencies call require() for Node's built-ins
  banner: { js: 'import { createRequire as __berthRequire } from "node:module"; const require = __berthRequire(import.meta.url);' },
};

await build({
  ...common,
  entryPoints: [join(dist, "main.js")],
  outfile: join(dist, "cli.cjs"),
  format: "cjs",
  // import() of Node's built-ins (`@berth/digest` so loads node:zlib) as a
  // promise of require(): a script run from a code cache has no module loader
  // for import() unless an experimental vm option is given
  supported: { "dynamic-import": false },
  // the modules find their files (package.json, the workers) from their own URL
  define: { "import.meta.url": "__berthModuleUrl" },
  banner: { js: '"use strict"; var __berthModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
});
// The launcher reads the bundle as latin1, the same text only while it is ASCII
// (esbuild escapes other characters in strings, not in regular expressions:
// write `\u00b5` there, not the character).
if ((await readFile(join(dist, "cli.cjs"))).some((b) => b > 0x7f)) throw new Error("dist/cli.cjs is not ASCII");
await build({ ...common, entryPoints: [join(dist, "launcher.js")], outfile: join(dist, "berth.js"), banner: {} });
await build({ ...common, entryPoints: [join(packageDist("@berth/docker-archive"), "ingest-worker.js")], outfile: join(dist, "ingest-worker.js") });
await build({ ...common, entryPoints: [join(packageDist("@berth/layer-store"), "write-worker.js")], outfile: join(dist, "write-worker.js") });
await build({ ...common, entryPoints: [join(packageDist("@berth/image-service"), "gzip-worker.js")], outfile: join(dist, "gzip-worker.js") });
await mkdir(join(dist, "page"), { recursive: true });
await copyFile(join(packageDist("@berth/server"), "ui", "page", "app.js"), join(dist, "page", "app.js"));
