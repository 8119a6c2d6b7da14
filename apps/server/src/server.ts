/**
 * `startServer`: the berth server process — its listeners, the faces mounted
 * on them by path, the request log, and graceful shutdown.
 *
 * Mount table (the same on every listener):
 *
 * | path | face |
 * | --- | --- |
 * | `/v2`, `/v2/…` | registry (OCI Distribution) |
 * | the token path (`/token`), token auth only | token endpoint |
 * | `/ui`, `/ui/…` | explorer page |
 * | everything else (`/_ping`, `/v1.NN/…`, `/images/…`, …) | Docker Engine API, when mounted |
 *
 * The Engine API and the page have no auth of their own, so on a TCP listener
 * off loopback they answer 403 (unless `allowRemoteWithoutAuth`); the unix
 * socket and loopback TCP serve them.
 * @module
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createAuthorizer } from "./auth/authorizer.js";
import { tokenFace } from "./auth/endpoint.js";
import { type RequestContext, requestContext } from "./context.js";
import { optionError, stoppedError } from "./errors.js";
import { sendJson } from "./http.js";
import { listenTcp, listenUnix, makeServer } from "./listeners.js";
import { logEntry, requestLogger } from "./log.js";
import { mountTable } from "./mount.js";
import { type ServerOptions, checkListen, isLoopbackHost, resolveLimits } from "./options.js";
import { registryFace } from "./registry/face.js";

/** A running server. */
export interface RunningServer {
  /** Base URL of the TCP listener: `http://127.0.0.1:5000` (`https://…` with TLS). */
  url: string;
  /** The address it listens on. */
  host: string;
  /** The bound TCP port (the real one when 0 was asked). */
  port: number;
  /** The unix socket, when one was asked for. */
  socketPath?: string;
  /**
   * Stop: no new connections, idle ones closed, requests in flight given
   * `shutdownGraceMs` to finish, then aborted (their AbortSignal fires; an
   * upload stops where it is and nothing half-written becomes visible).
   * Idempotent; resolves when every listener is closed.
   */
  close(): Promise<void>;
  /** Resolves when the server has stopped (by close() or a signal). */
  readonly closed: Promise<void>;
}

const SHUTDOWN_ABORT_WAIT_MS = 2_000;

/**
 * Start the server: listen on `host:port` (TLS when `tls` is given) and on
 * `socketPath` when given, with the faces of `options` mounted by path.
 *
 * @throws FailedPreconditionError `ERR_SERVER_UNSAFE_LISTEN` off loopback without auth (unless allowed)
 * @throws InvalidArgumentError `ERR_SERVER_OPTION`, `ERR_SERVER_TLS`, `ERR_SERVER_HTPASSWD`, `ERR_SERVER_TOKEN_KEY`
 * @throws UnavailableError `ERR_SERVER_ADDRESS_IN_USE`, `ERR_SERVER_LISTEN`
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { host, port } = checkListen(options);
  const limits = resolveLimits(options.limits);
  const graceMs = options.shutdownGraceMs ?? 10_000;
  if (!Number.isInteger(graceMs) || graceMs < 0) throw optionError("shutdownGraceMs", "must be a non-negative integer");
  const auth = createAuthorizer(options.auth);
  const registry = options.registry
    ? registryFace({ backend: options.registry.backend, auth, limits, deleteEnabled: options.registry.deleteEnabled ?? true })
    : undefined;
  const token = auth.token ? tokenFace(auth) : undefined;
  const tokenPath = auth.token?.path;

  const pick = mountTable({
    ...(registry ? { registry } : {}),
    ...(token && tokenPath ? { token: { path: tokenPath, face: token } } : {}),
    ...(options.engine ? { engine: options.engine } : {}),
    ...(options.ui ? { ui: options.ui } : {}),
    // The Engine API and the page have no auth of their own: off loopback (where the
    // registry needs auth), TCP clients do not reach them; the unix socket and loopback TCP do.
    openFacesOnTcp: isLoopbackHost(host) || options.allowRemoteWithoutAuth === true,
  });
  const log = requestLogger(options.log);

  const inflight = new Set<RequestContext>();
  let stopping = false;
  const idle: Array<() => void> = [];

  const handler = (tcp: boolean) => (req: IncomingMessage, res: ServerResponse) => {
    const ctx = requestContext(req);
    const conn = req.socket;
    const bytesBefore = conn.bytesWritten ?? 0;
    inflight.add(ctx);
    // An aborted request stops reading its body at once (a stalled upload ends with the abort).
    ctx.signal.addEventListener("abort", () => void (req.complete || req.destroy()), { once: true });
    res.once("close", () => {
      // The client went away (or the connection was cut) before the answer was complete.
      if (!res.writableFinished) ctx.abort(new Error("client disconnected"));
      inflight.delete(ctx);
      if (log) log(logEntry(req, res, ctx, bytesBefore, conn));
      if (inflight.size === 0) for (const f of idle.splice(0)) f();
    });
    if (stopping) res.setHeader("Connection", "close");
    const url = req.url ?? "/";
    if (url.length > limits.maxUrlLength) {
      ctx.errorCode = "URI_TOO_LONG";
      sendJson(res, 414, { errors: [{ code: "UNSUPPORTED", message: `request target longer than ${limits.maxUrlLength} characters` }] }, { Connection: "close" });
      return;
    }
    const q = url.indexOf("?");
    const face = pick(q === -1 ? url : url.slice(0, q), tcp);
    face(req, res).catch((err: unknown) => {
      ctx.error = err;
      if (!res.headersSent) {
        ctx.errorCode = "INTERNAL";
        sendJson(res, 500, { errors: [{ code: "UNKNOWN", message: "internal server error" }] }, { Connection: "close" });
      } else {
        res.destroy();
      }
    });
  };

  const servers: Server[] = [];
  const tcp = makeServer(handler(true), limits, options.tls);
  const boundPort = await listenTcp(tcp, host, port);
  servers.push(tcp);
  if (options.socketPath) {
    const unix = makeServer(handler(false), limits);
    try {
      await listenUnix(unix, options.socketPath, options.socketMode ?? 0o660);
    } catch (err) {
      await new Promise<void>((r) => tcp.close(() => r()));
      throw err;
    }
    servers.push(unix);
  }

  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => {
    resolveClosed = r;
  });
  let closing: Promise<void> | undefined;
  const onSignal = () => {
    if (closing) {
      // A second signal: stop waiting.
      for (const ctx of inflight) ctx.abort(stoppedError());
      for (const s of servers) s.closeAllConnections();
      return;
    }
    void close();
  };
  if (options.handleSignals) {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }

  function close(): Promise<void> {
    closing ??= (async () => {
      stopping = true;
      const allClosed = Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      for (const s of servers) s.closeIdleConnections();
      const drained = (ms: number) =>
        new Promise<boolean>((resolve) => {
          if (inflight.size === 0) return resolve(true);
          const t = setTimeout(() => resolve(false), ms);
          idle.push(() => {
            clearTimeout(t);
            resolve(true);
          });
        });
      if (!(await drained(graceMs))) {
        for (const ctx of inflight) ctx.abort(stoppedError());
        await drained(SHUTDOWN_ABORT_WAIT_MS);
      }
      for (const s of servers) s.closeAllConnections();
      await allClosed;
      if (options.handleSignals) {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
      resolveClosed();
    })();
    return closing;
  }

  const scheme = options.tls ? "https" : "http";
  const shownHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `${scheme}://${shownHost}:${boundPort}`,
    host,
    port: boundPort,
    ...(options.socketPath ? { socketPath: options.socketPath } : {}),
    close,
    closed,
  };
}
