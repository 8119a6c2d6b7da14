import { createReadStream } from "node:fs";
import { chainIds, layerDigests } from "@berth/digest";
import type { Command } from "commander";
import type { Context } from "../context.js";
import { renderTemplate, unescapeFormat } from "../format.js";

/** `berth digest FILE...` and `berth digest --chain`. */
export function register(program: Command, ctx: Context): void {
  program
    .command("digest")
    .description("Print the sha256 digest of files; for layer blobs also the DiffID (digest of the uncompressed tar)")
    .argument("<file...>", "files to digest ('-' for stdin), or DiffIDs with --chain")
    .option("--chain", "treat the arguments as DiffIDs (bottom first) and print the ChainID of each prefix")
    .option("--format <format>", "table (default), json, or a Go-like template such as '{{.DiffID}}'")
    .addHelpText(
      "after",
      `
Examples:
  berth digest layer.tar.gz
  berth digest --format json blobs/sha256/*
  berth digest --chain sha256:aaaa… sha256:bbbb…`,
    )
    .action(async (files: string[], opts: { chain?: boolean; format?: string }) => {
      if (opts.chain) {
        const ids = chainIds(files);
        if (opts.format === "json") ctx.out(`${JSON.stringify(ids.map((c, i) => ({ DiffID: files[i], ChainID: c })))}\n`);
        else for (const id of ids) ctx.out(`${id}\n`);
        return;
      }
      const rows: Record<string, unknown>[] = [];
      for (const file of files) {
        const source = file === "-" ? process.stdin : createReadStream(file);
        const d = await layerDigests(source);
        const row = {
          File: file,
          Digest: d.digest,
          Size: d.size,
          DiffID: d.diffID,
          UncompressedSize: d.uncompressedSize,
          Compression: d.compression,
        };
        if (opts.format === "json") rows.push(row);
        else if (opts.format && opts.format !== "table") ctx.out(`${renderTemplate(unescapeFormat(opts.format), row)}\n`);
        else ctx.out(`${d.digest}  ${file}${d.compression === "none" ? "" : `  diffid=${d.diffID} (${d.compression})`}\n`);
      }
      if (opts.format === "json") ctx.out(`${JSON.stringify(rows, null, 2)}\n`);
    });
}
