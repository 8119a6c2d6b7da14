// ESM loader hooks: resolve workspace packages through their `source` export
// condition, map `./x.js` imports to `./x.ts`, and transpile TypeScript with
// the TypeScript compiler (cached on disk by path + mtime, so children after the
// first start fast).
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const cacheDir = path.join(tmpdir(), "berth-image-store-ts-cache");
mkdirSync(cacheDir, { recursive: true });
let ts;

export async function resolve(specifier, context, nextResolve) {
  const ctx = { ...context, conditions: [...new Set(["source", ...(context.conditions ?? [])])] };
  try {
    return await nextResolve(specifier, ctx);
  } catch (err) {
    if (specifier.endsWith(".js") && (specifier.startsWith(".") || specifier.startsWith("/"))) {
      return nextResolve(`${specifier.slice(0, -3)}.ts`, ctx);
    }
    throw err;
  }
}

export async function load(url, context, nextLoad) {
  if (!url.endsWith(".ts")) return nextLoad(url, context);
  const file = fileURLToPath(url);
  const st = statSync(file);
  const key = createHash("sha256").update(`${file}\0${st.mtimeMs}\0${st.size}`).digest("hex").slice(0, 32);
  const cached = path.join(cacheDir, `${key}.mjs`);
  let source;
  try {
    source = readFileSync(cached, "utf8");
  } catch {
    ts ??= (await import("typescript")).default;
    const out = ts.transpileModule(readFileSync(file, "utf8"), {
      fileName: file,
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
        sourceMap: false,
      },
    });
    source = out.outputText;
    const tmp = `${cached}.${process.pid}.tmp`;
    writeFileSync(tmp, source);
    try {
      (await import("node:fs")).renameSync(tmp, cached);
    } catch {}
  }
  return { format: "module", source, shortCircuit: true };
}
