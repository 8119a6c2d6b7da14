import type { Command } from "commander";
import type { Context } from "../context.js";
import { UsageError } from "../exit.js";

interface ServeOptions {
  host: string;
  port: string;
  socket?: string;
  tlsCert?: string;
  tlsKey?: string;
  logFormat: string;
  allowRemoteWithoutAuth?: boolean;
  auth: string;
  htpasswd?: string;
  registry: boolean;
}

/** Register `berth serve`. */
export function register(program: Command, ctx: Context): void {
  program
    .command("serve")
    .description(
      "Serve the store: an OCI registry at /v2/ (what the store holds is pullable, what is pushed is an image), the Docker Engine API (images) and the explorer page (/ui/) on loopback TCP and a unix socket",
    )
    .option("--host <address>", "address to listen on", "127.0.0.1")
    .option("-p, --port <port>", "TCP port (0: a free one)", "5000")
    .option("--socket <path>", "also listen on this unix socket (DOCKER_HOST=unix://PATH)")
    .option("--tls-cert <file>", "serve HTTPS with this certificate (PEM)")
    .option("--tls-key <file>", "and this key (PEM)")
    .option("--log-format <format>", "request log on stderr: text, json or none", "text")
    .option("--auth <mode>", "registry auth: none, basic or token (basic and token need --htpasswd)", "none")
    .option("--htpasswd <file>", "bcrypt htpasswd file of the accounts (htpasswd -B)")
    .option("--no-registry", "do not serve the registry at /v2/")
    .option("--allow-remote-without-auth", "listen off loopback without auth (the Engine API is still served only on loopback and the socket)")
    .addHelpText(
      "after",
      `
Stops gracefully on Ctrl-C or SIGTERM (requests in flight finish or are cancelled; nothing half-written stays).

Examples:
  berth serve --socket /tmp/berth.sock &
  docker pull 127.0.0.1:5000/app:1          # an image berth load put in the store as app:1
  docker push 127.0.0.1:5000/team/x:2       # now in berth images as team/x:2
  DOCKER_HOST=unix:///tmp/berth.sock docker images
  DOCKER_HOST=tcp://127.0.0.1:5000 docker load -i app.tar`,
    )
    .action(async (opts: ServeOptions) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`invalid --port ${JSON.stringify(opts.port)}`);
      if (!["text", "json", "none"].includes(opts.logFormat)) throw new UsageError(`invalid --log-format ${JSON.stringify(opts.logFormat)} (want text, json or none)`);
      if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new UsageError("--tls-cert and --tls-key go together");
      if (!["none", "basic", "token"].includes(opts.auth)) throw new UsageError(`invalid --auth ${JSON.stringify(opts.auth)} (want none, basic or token)`);
      if (opts.auth !== "none" && opts.htpasswd === undefined) throw new UsageError(`--auth ${opts.auth} needs --htpasswd`);
      const { serveStore } = await import("@berth/server");
      const server = await serveStore({
        root: ctx.root,
        host: opts.host,
        port,
        ...(opts.socket ? { socketPath: opts.socket } : {}),
        ...(opts.tlsCert && opts.tlsKey ? { tls: { cert: { path: opts.tlsCert }, key: { path: opts.tlsKey } } } : {}),
        log: { format: opts.logFormat as "text" | "json" | "none" },
        ...(opts.auth !== "none" ? { auth: { mode: opts.auth as "basic" | "token", htpasswd: opts.htpasswd! } } : {}),
        ...(opts.registry === false ? { registry: false as const } : {}),
        allowRemoteWithoutAuth: opts.allowRemoteWithoutAuth === true,
        handleSignals: true,
        onError: (err) => {
          if (ctx.globals.debug) process.stderr.write(`berth: serve: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
        },
      });
      const tcp = server.url.replace(/^https?:/, "tcp:");
      ctx.info(`berth serve: store ${ctx.root}`);
      ctx.info(`berth serve: listening on ${server.url} (DOCKER_HOST=${tcp})`);
      if (server.socketPath) ctx.info(`berth serve: and on unix://${server.socketPath} (DOCKER_HOST=unix://${server.socketPath})`);
      if (server.registry) ctx.info(`berth serve: registry at ${server.url}/v2/ (docker pull ${server.host}:${server.port}/NAME:TAG)`);
      ctx.info(`berth serve: explorer page at ${server.url}/ui/`);
      await server.closed;
    });
}
