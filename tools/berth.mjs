#!/usr/bin/env node
// `pnpm -s berth <args>`: build the CLI and what it depends on (turbo, cached;
// its output is shown only when the build fails), then run it with the args.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const turbo = join(root, "node_modules", ".bin", "turbo");
const build = spawnSync(turbo, ["run", "build", "--filter=berth...", "--output-logs=errors-only"], {
  cwd: root,
  encoding: "utf8",
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1" },
});
if (build.status !== 0) {
  process.stderr.write(`${build.stdout ?? ""}${build.stderr ?? ""}berth: building the CLI failed\n`);
  process.exit(build.status ?? 1);
}
const cli = spawnSync(process.execPath, [join(root, "apps", "cli", "dist", "berth.js"), ...process.argv.slice(2)], { stdio: "inherit" });
process.exit(cli.status ?? (cli.signal ? 128 + 2 : 1));
