#!/usr/bin/env node
/**
 * `berth-digest FILE...`: print each file's sha256 digest and, when the file is
 * a (compressed) tar layer, its DiffID. `--chain DIFFID...` prints ChainIDs.
 */
import { createReadStream } from "node:fs";
import { BerthError, chainIds, layerDigests } from "./index.js";

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h") {
    process.stdout.write("usage: berth-digest FILE...\n       berth-digest --chain DIFFID...\n");
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === "--chain") {
    for (const id of chainIds(argv.slice(1))) process.stdout.write(`${id}\n`);
    return 0;
  }
  for (const file of argv) {
    const d = await layerDigests(createReadStream(file));
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
