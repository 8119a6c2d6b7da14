/**
 * The server's listeners: HTTP or HTTPS on TCP, and plain HTTP on a unix
 * socket, all with the same limits and handler.
 *
 * A plain listener answers a TLS ClientHello at once with a 400 and a close:
 * docker and skopeo try TLS first on a registry they do not know to be
 * insecure and fall back to HTTP only when the server answers; one that waits
 * for more bytes stalls them.
 * @module
 */
import { readFileSync } from "node:fs";
import { lstat, unlink, chmod } from "node:fs/promises";
import { type IncomingMessage, type RequestListener, type Server, type ServerResponse, createServer as createHttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { connect, type Socket } from "node:net";
import { InvalidArgumentError } from "@berth/digest";
import { SERVER_ERROR_CODES, listenError } from "./errors.js";
import type { ResolvedLimits, TlsOptions } from "./options.js";

const TLS_HANDSHAKE = 0x16;

function pem(value: TlsOptions["cert"], what: string): Buffer | string {
  if (typeof value === "string" || value instanceof Uint8Array) return typeof value === "string" ? value : Buffer.from(value);
  try {
    return readFileSync(value.path);
  } catch (cause) {
    throw new InvalidArgumentError(`cannot read the TLS ${what} ${value.path}: ${(cause as Error).message}`, {
      code: SERVER_ERROR_CODES.tls,
      cause,
      details: { path: value.path },
    });
  }
}

function rawAnswer(socket: Socket, status: string, message: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ errors: [{ code: "UNSUPPORTED", message }] });
  socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** Answers requests node could not parse (before any handler runs). */
function onClientError(err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket): void {
  const code = err.code ?? "";
  if (err.rawPacket?.[0] === TLS_HANDSHAKE) rawAnswer(socket, "400 Bad Request", "this port speaks plain HTTP, not TLS");
  else if (code === "HPE_HEADER_OVERFLOW") rawAnswer(socket, "431 Request Header Fields Too Large", "request head too large");
  else if (code === "ERR_HTTP_REQUEST_TIMEOUT") rawAnswer(socket, "408 Request Timeout", "request not received in time");
  else if (code === "ECONNRESET" || code === "EPIPE") socket.destroy();
  else rawAnswer(socket, "400 Bad Request", "malformed HTTP request");
}

/** Make a server (HTTPS when `tls` is given) with the limits applied. */
export function makeServer(handler: RequestListener, limits: ResolvedLimits, tls?: TlsOptions): Server {
  const httpOptions = {
    maxHeaderSize: limits.maxHeaderSize,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.max(250, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
    noDelay: true,
  };
  let server: Server;
  if (tls) {
    const options = { cert: pem(tls.cert, "certificate"), key: pem(tls.key, "key") };
    try {
      server = createHttpsServer({ ...httpOptions, ...options, minVersion: "TLSv1.2" }, handler) as unknown as Server;
    } catch (cause) {
      throw new InvalidArgumentError(`cannot use the TLS certificate and key: ${(cause as Error).message}`, { code: SERVER_ERROR_CODES.tls, cause });
    }
  } else {
    server = createHttpServer(httpOptions, handler);
  }
  server.timeout = limits.idleTimeoutMs;
  // A connection idle that long is closed when the client is the one not moving: no request in
  // flight, a body not fully received, or an answer it stops reading. Not while the server itself
  // works on a request it has whole (a load of thousands of images can commit for minutes).
  const inFlight = new WeakMap<Socket, { req: IncomingMessage; res: ServerResponse }>();
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    inFlight.set(req.socket, { req, res });
    res.once("close", () => {
      if (inFlight.get(req.socket)?.res === res) inFlight.delete(req.socket);
    });
  });
  server.on("timeout", (socket: Socket) => {
    const cur = inFlight.get(socket);
    if (cur && cur.req.complete && !cur.res.writableEnded && !cur.res.writableNeedDrain) return;
    socket.destroy();
  });
  server.maxConnections = limits.maxConnections;
  server.on("clientError", onClientError);
  return server;
}

/** Listen on TCP; resolves with the bound port. */
export function listenTcp(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(listenError(`${host}:${port}`, err));
    server.once("error", onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off("error", onError);
      const addr = server.address();
      resolve(typeof addr === "object" && addr ? addr.port : port);
    });
  });
}

/** True when something answers on the unix socket. */
function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Listen on a unix socket. A socket file nobody answers on (left by a killed
 * server) is replaced; a live one, or a path that is not a socket, is an error.
 */
export async function listenUnix(server: Server, path: string, mode: number): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (st) {
    if (!st.isSocket()) throw listenError(path, new Error("the path exists and is not a socket"));
    if (await socketAlive(path)) throw listenError(path, Object.assign(new Error("in use"), { code: "EADDRINUSE" }));
    await unlink(path).catch(() => {});
  }
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(listenError(path, err));
    server.once("error", onError);
    server.listen({ path, exclusive: true }, () => {
      server.off("error", onError);
      resolve();
    });
  });
  await chmod(path, mode);
}
