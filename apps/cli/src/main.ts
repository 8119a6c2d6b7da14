/**
 * The `berth` command: container images without a Docker daemon.
 * Parsing by commander (well-kept, zero dependencies, Node 20 compatible in v14).
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import * as archiveCmd from "./commands/archive.js";
import * as cacheCmd from "./commands/cache.js";
import * as completionCmd from "./commands/completion.js";
import * as digestCmd from "./commands/digest.js";
import * as exploreCmd from "./commands/explore.js";
import * as imagesCmd from "./commands/images.js";
import * as importCmd from "./commands/import.js";
import * as loginCmd from "./commands/login.js";
import * as registryCmd from "./commands/registry.js";
import * as serveCmd from "./commands/serve.js";
import * as systemCmd from "./commands/system.js";
import * as unpackCmd from "./commands/unpack.js";
import * as commitCmd from "./commands/commit.js";
import * as diffCmd from "./commands/diff.js";
import { Context, closeContextStore } from "./context.js";
import { describeError, EXIT, errorCode, exitCodeFor } from "./exit.js";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };

/** Build the program with every verb registered. */
export function buildProgram(): { program: Command; ctx: Context } {
  const program = new Command("berth");
  const ctx = new Context(program);
  program
    .description("Container images without a Docker daemon: an image store, docker save/load archives, build cache")
    .version(pkg.version, "-v, --version", "print the version")
    .option("--root <dir>", "store root (default: $BERTH_ROOT, else $XDG_DATA_HOME/berth, else ~/.local/share/berth)")
    .option("-q, --quiet", "print less: no progress, no informational lines")
    .option("-D, --debug", "show error codes and stack traces")
    .addOption(new Option("--progress <mode>", "progress display").choices(["auto", "tty", "plain", "json", "none"]).default("auto"))
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({
      outputError: (str, write) => write(`berth: ${str.replace(/^error: /, "")}`),
    })
    .exitOverride();
  imagesCmd.register(program, ctx);
  archiveCmd.register(program, ctx);
  registryCmd.register(program, ctx);
  loginCmd.register(program, ctx);
  importCmd.register(program, ctx);
  systemCmd.register(program, ctx);
  serveCmd.register(program, ctx);
  exploreCmd.register(program, ctx);
  cacheCmd.register(program, ctx);
  digestCmd.register(program, ctx);
  unpackCmd.register(program, ctx);
  completionCmd.register(program, ctx);
  commitCmd.register(program, ctx);
  diffCmd.register(program, ctx);
  // Options after the verb belong to the verb (`berth images -q` is images' -q), so the
  // global options are positional; leaf verbs accept them too (`berth load --root X`).
  program.enablePositionalOptions();
  const configure = (cmd: Command) => {
    const verb = verbPath(program, cmd);
    cmd
      .exitOverride()
      .configureOutput({ outputError: (str, write) => write(`berth: ${verb}: ${str.replace(/^error: /, "")}`) })
      .showHelpAfterError("(run with --help for usage)");
    if (cmd.commands.length === 0) addGlobalOptions(cmd);
    for (const sub of cmd.commands) configure(sub);
  };
  for (const cmd of program.commands) configure(cmd);
  program.hook("preAction", (_this, action) => {
    ctx.verb = verbPath(program, action);
    ctx.action = action;
  });
  return { program, ctx };
}

/** `image inspect` for the inspect subcommand: the names from the program down to `cmd`. */
function verbPath(program: Command, cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c && c !== program; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/** The global options, hidden, on a leaf verb (unless the verb has its own meaning for the flag). */
function addGlobalOptions(cmd: Command): void {
  const has = (flag: string) => cmd.options.some((o) => o.short === flag || o.long === flag);
  if (!has("--root")) cmd.addOption(new Option("--root <dir>", "store root").hideHelp());
  if (!has("--debug") && !has("-D")) cmd.addOption(new Option("-D, --debug", "show error codes and stack traces").hideHelp());
  if (!has("--progress"))
    cmd.addOption(new Option("--progress <mode>", "progress display").choices(["auto", "tty", "plain", "json", "none"]).hideHelp());
  if (!has("--quiet") && !has("-q")) cmd.addOption(new Option("-q, --quiet", "print less").hideHelp());
}

async function main(argv: string[]): Promise<number> {
  const { program, ctx } = buildProgram();
  verbOf = () => ctx.verb ?? "";
  let debug = argv.includes("--debug") || argv.includes("-D");
  try {
    await program.parseAsync(argv, { from: "user" });
    debug = program.opts().debug === true;
    await closeContextStore();
    return process.exitCode === undefined ? EXIT.ok : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit with 0; usage errors were already printed by commander
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") return EXIT.ok;
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if ((err as { reported?: boolean }).reported) return exitCodeFor(err);
    await closeContextStore().catch(() => {});
    const code = errorCode(err);
    const what = ctx.verb ?? program.args[0] ?? "berth";
    process.stderr.write(`berth: ${what}: ${describeError(err)}${debug && code ? ` [${code}]` : ""}\n`);
    if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return exitCodeFor(err);
  }
}

// A closed stdout (`berth images | head`) ends the command quietly; a save whose reader went away failed.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
  if (!/(^| )save$/.test(currentVerb())) process.exit(EXIT.ok);
  process.stderr.write("berth: save: stdout was closed before the archive was complete\n");
  process.exit(EXIT.io);
});
let verbOf: () => string = () => "";
const currentVerb = () => verbOf();
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // Exit once stdout has drained, even if a library left a handle open (e.g. a daemon socket).
  process.stdout.write("", () => process.exit(code));
});
