/**
 * A logging HTTP proxy between a Docker client and an Engine API socket: every
 * request is forwarded unchanged to the upstream unix socket and the response
 * streamed back unchanged (status, headers, framing), while both bodies are
 * teed into a recorder. The recording of each exchange is its method, path,
 * query, headers, status and bodies (see {@link RecordedBody}).
 * @module
 */
import { rm } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { BodyRecorder, type RecordedBody } from "./body.js";

/** One request and its response. */
export interface Exchange {
  method: string;
  /** The path without the query, as sent (names in it are not escaped by the docker CLI). */
  path: string;
  /** Query parameters; a repeated key keeps all its values. */
  query: Record<string, string | string[]>;
  requestHeaders: Record<string, string | string[]>;
  requestBody: RecordedBody;
  status: number;
  responseHeaders: Record<string, string | string[]>;
  responseBody: RecordedBody;
}

/** Where the proxy listens: a unix socket path, or a TCP port on 127.0.0.1 (0 = any). */
export type ProxyListen = { socketPath: string } | { port: number };

/** Options of {@link startRecordingProxy}. */
export interface RecordingProxyOptions {
  /** The Engine API socket requests go to (e.g. the shared dockerd's). */
  upstreamSocket: string;
  listen: ProxyListen;
}

/** A running proxy. */
export interface RecordingProxy {
  /** `unix:///…` or `tcp://127.0.0.1:PORT`: the DOCKER_HOST value for clients. */
  host: string;
  /** Exchanges completed since the last {@link RecordingProxy.take} (in completion order). */
  readonly exchanges: readonly Exchange[];
  /** Wait until no request is in flight, then return the exchanges so far and start a new list. */
  take(): Promise<Exchange[]>;
  close(): Promise<void>;
}

function plainHeaders(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = v;
  return out;
}

function splitUrl(url: string): { path: string; query: Record<string, string | string[]> } {
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  const query: Record<string, string | string[]> = {};
  if (q >= 0) {
    for (const [k, v] of new URLSearchParams(url.slice(q + 1))) {
      const prev = query[k];
      query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
  }
  return { path, query };
}

function contentType(h: IncomingHttpHeaders): string | undefined {
  const v = h["content-type"];
  return Array.isArray(v) ? v[0] : v;
}

/** Start the proxy; it records until closed. */
export async function startRecordingProxy(opts: RecordingProxyOptions): Promise<RecordingProxy> {
  let exchanges: Exchange[] = [];
  let inFlight = 0;
  let idle: Array<() => void> = [];
  const settle = () => {
    if (inFlight === 0) {
      const waiting = idle;
      idle = [];
      for (const w of waiting) w();
    }
  };

  const server: Server = createServer((req: IncomingMessage, res) => {
    inFlight++;
    const started = splitUrl(req.url ?? "/");
    const reqBody = new BodyRecorder();
    const resBody = new BodyRecorder();
    const up = request({
      socketPath: opts.upstreamSocket,
      method: req.method,
      path: req.url,
      headers: req.headers,
    });
    let done = false;
    const finish = async (status: number, upHeaders: IncomingHttpHeaders) => {
      if (done) return;
      done = true;
      try {
        exchanges.push({
          method: req.method ?? "GET",
          path: started.path,
          query: started.query,
          requestHeaders: plainHeaders(req.headers),
          requestBody: await reqBody.finish(contentType(req.headers)),
          status,
          responseHeaders: plainHeaders(upHeaders),
          responseBody: await resBody.finish(contentType(upHeaders)),
        });
      } finally {
        inFlight--;
        settle();
      }
    };
    up.on("response", (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.rawHeaders);
      upRes.on("data", (c: Buffer) => {
        resBody.push(c);
        res.write(c);
      });
      upRes.on("end", () => {
        res.end();
        void finish(upRes.statusCode ?? 502, upRes.headers);
      });
      upRes.on("error", () => {
        res.destroy();
        void finish(upRes.statusCode ?? 502, upRes.headers);
      });
    });
    up.on("error", (err) => {
      if (!res.headersSent) {
        res.writeHead(502, { "content-type": "application/json" });
        res.end(JSON.stringify({ message: `proxy: upstream ${opts.upstreamSocket}: ${err.message}` }));
      } else res.destroy();
      void finish(502, {});
    });
    req.on("data", (c: Buffer) => {
      reqBody.push(c);
      up.write(c);
    });
    req.on("end", () => up.end());
    req.on("error", () => up.destroy());
    // a client that goes away (docker load of a bad tar may) ends the upstream request too
    res.on("close", () => {
      if (!res.writableFinished) up.destroy();
    });
  });

  let host: string;
  if ("socketPath" in opts.listen) {
    await rm(opts.listen.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen((opts.listen as { socketPath: string }).socketPath, () => resolve());
    });
    host = `unix://${opts.listen.socketPath}`;
  } else {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen((opts.listen as { port: number }).port, "127.0.0.1", () => resolve());
    });
    host = `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  return {
    host,
    get exchanges() {
      return exchanges;
    },
    async take() {
      if (inFlight > 0) await new Promise<void>((r) => idle.push(r));
      const out = exchanges;
      exchanges = [];
      return out;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
