/**
 * Test helpers: the face on its own node:http servers (a unix socket and TCP
 * 127.0.0.1), raw requests to it, the recordings, and the docker clients.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { UnavailableError } from "@berth/digest";
import type { RawRecording, Recording } from "@berth/docker-proxy";
import { createEngineApi, type EngineApiOptions, type EngineImageService } from "../../src/engine/index.js";

export const RECORDINGS = fileURLToPath(new URL("./recordings/", import.meta.url));

/** A recording of a CLI scenario. */
export async function recording(name: string): Promise<Recording> {
  return JSON.parse(await readFile(join(RECORDINGS, `${name}.json`), "utf8")) as Recording;
}

/** A recording of a raw request. */
export async function rawRecording(name: string): Promise<RawRecording> {
  return JSON.parse(await readFile(join(RECORDINGS, `raw-${name}.json`), "utf8")) as RawRecording;
}

/**
 * The service for tests of endpoints that must not reach the image service
 * (versions, ping, refusals): any call fails the request with a 503 naming
 * the method, which the test then sees.
 */
export function serviceNotExpected(): EngineImageService {
  return new Proxy({} as EngineImageService, {
    get(_t, method) {
      return async () => {
        throw new UnavailableError(`test: the image service was called (${String(method)}) where no call was expected`);
      };
    },
  });
}

/** The face listening on a unix socket and on TCP 127.0.0.1. */
export interface Served {
  socketPath: string;
  port: number;
  /** DOCKER_HOST values. */
  unixHost: string;
  tcpHost: string;
  close(): Promise<void>;
}

/** Start the face on its own servers. */
export async function serve(opts: EngineApiOptions): Promise<Served> {
  const engine = createEngineApi(opts);
  const dir = await mkdtemp(join(tmpdir(), "berth-engine-test-"));
  const socketPath = join(dir, "berth.sock");
  const servers: Server[] = [];
  const listen = (target: string | number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer((req, res) => void engine(req, res));
      s.once("error", reject);
      if (typeof target === "string") s.listen(target, () => resolve(s));
      else s.listen(target, "127.0.0.1", () => resolve(s));
    });
  servers.push(await listen(socketPath));
  const tcp = await listen(0);
  servers.push(tcp);
  const port = (tcp.address() as AddressInfo).port;
  return {
    socketPath,
    port,
    unixHost: `unix://${socketPath}`,
    tcpHost: `tcp://127.0.0.1:${port}`,
    async close() {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A raw response. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request to the face over its unix socket (or TCP when `port` is given). */
export function raw(target: { socketPath: string } | { port: number }, method: string, path: string, body?: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ ...target, ...("port" in target ? { host: "127.0.0.1" } : {}), method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** The docker clients present on this machine (28.2.2 is not a Debian package: CI may lack it). */
export const DOCKER_CLIS = [
  { name: "28.2.2", path: "/usr/local/bin/docker" },
  { name: "20.10", path: "/usr/bin/docker" },
].filter((c) => existsSync(c.path));
