#!/usr/bin/env node
/**
 * `berth-digest FILE...`: print each file's sha256 digest and, when the file is
 * a (compressed) tar layer, its DiffID. `--chain DIFFID...` prints ChainIDs.
 * `--backend wasm|node|noble` forces a backend (default: the automatic choice).
 */
import { createReadStream } from "node:fs";
import { BerthError, type DigestApi, api as autoApi } from "./index.js";

async function pickApi(name: string | undefined): Promise<DigestApi> {
  switch (name) {
    case undefined:
    case "auto":
      return autoApi;
    case "wasm":
      return (await import("./wasm.js")).api;
    case "node":
      return (await import("./node.js")).api;
    case "noble":
      return (await import("./noble.js")).api;
    default:
      throw new BerthError("ERR_INVALID_ARGUMENT", `unknown backend ${JSON.stringify(name)} (wasm, node, noble, auto)`);
  }
}

async function main(argv: string[]): Promise<number> {
  let backend: string | undefined;
  if (argv[0] === "--backend") {
    backend = argv[1];
    argv = argv.slice(2);
  }
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h") {
    process.stdout.write("usage: berth-digest [--backend wasm|node|noble] FILE...\n       berth-digest [--backend B] --chain DIFFID...\n");
    return argv.length === 0 ? 2 : 0;
  }
  const api = await pickApi(backend);
  if (argv[0] === "--chain") {
    for (const id of api.chainIds(argv.slice(1))) process.stdout.write(`${id}\n`);
    return 0;
  }
  for (const file of argv) {
    const d = await api.layerDigests(createReadStream(file));
    const extra = d.compression === "none" ? "" : `  diffid=${d.diffID} (${d.compression})`;
    process.stdout.write(`${d.digest}  ${file}${extra}\n`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const code = err instanceof BerthError ? ` [${err.code}]` : "";
    process.stderr.write(`berth-digest: ${err instanceof Error ? err.message : String(err)}${code}\n`);
    process.exit(1);
  },
);
