/**
 * `berth login` and `berth logout`, as docker's: the credential is checked
 * against the registry (`GET /v2/` through its auth), then kept in Docker's
 * config.json (`$DOCKER_CONFIG`, else `~/.docker`) or the credential helper
 * it names — the same place `docker login` writes and pull/push read
 * (`@berth/registry` does both).
 */
import { login, logout } from "@berth/image-service";
import type { Command } from "commander";
import type { Context } from "../context.js";
import { UsageError } from "../exit.js";

/** Docker Hub's key, as docker uses it when no server is given. */
const DOCKER_HUB = "docker.io";

/** Read a password from stdin (to its end, the trailing newline dropped), as `--password-stdin` does. */
async function readPassword(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError("--password-stdin needs the password piped in, not a terminal");
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

/** Register `login` and `logout`. */
export function register(program: Command, ctx: Context): void {
  program
    .command("login")
    .description("Log in to a registry: check the credential, then keep it where docker login does")
    .argument("[server]", "registry host[:port]", DOCKER_HUB)
    .option("-u, --username <name>", "user name")
    .option("-p, --password <password>", "password (visible to other users of the machine: prefer --password-stdin)")
    .option("--password-stdin", "read the password from stdin")
    .option("--insecure", "reach the registry without TLS verification, or over plain http (loopback registries always are)")
    .addHelpText("after", "\nExamples:\n  echo \"$TOKEN\" | berth login -u ci --password-stdin registry.example\n  berth login -u admin -p secret 127.0.0.1:5000")
    .action(async (server: string, opts: { username?: string; password?: string; passwordStdin?: boolean; insecure?: boolean }) => {
      if (opts.password !== undefined && opts.passwordStdin) throw new UsageError("--password and --password-stdin are mutually exclusive");
      if (!opts.username) throw new UsageError("a user name is needed (-u); berth does not prompt");
      if (opts.password === undefined && !opts.passwordStdin) throw new UsageError("a password is needed (--password-stdin, or -p); berth does not prompt");
      if (opts.password !== undefined) process.stderr.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n");
      const password = opts.password ?? (await readPassword());
      if (password === "") throw new UsageError("the password is empty");
      const stored = await login(server, opts.username, password, { insecure: opts.insecure === true });
      if (!ctx.globals.quiet) {
        process.stderr.write(stored.helper ? `Credentials kept by docker-credential-${stored.helper}\n` : `Credentials kept in ${stored.configFile}\n`);
      }
      ctx.out("Login Succeeded\n");
    });

  program
    .command("logout")
    .description("Forget a registry's credential (config.json and its credential helper)")
    .argument("[server]", "registry host[:port]", DOCKER_HUB)
    .action(async (server: string) => {
      const had = await logout(server);
      ctx.out(had ? `Removing login credentials for ${server}\n` : `Not logged in to ${server}\n`);
    });
}
