/**
 * `serveStore`: the server over a berth store root, as `berth serve` runs it —
 * the image service opened on the root, the Engine API and explorer faces mounted on it,
 * the store closed when the server stops.
 * @module
 */
import { type ImageService, openImageService } from "@berth/image-service";
import { createEngineApi } from "./engine/api.js";
import { engineService } from "./engine/adapter.js";
import type { EngineIdentity } from "./engine/context.js";
import type { ServerOptions } from "./options.js";
import { type RunningServer, startServer } from "./server.js";
import { createUiFace } from "./ui/face.js";

/** Options of {@link serveStore}: the server's, less the faces, plus the store root. */
export interface ServeStoreOptions extends Omit<ServerOptions, "engine" | "registry" | "ui"> {
  /** The store root (created when missing). */
  root: string;
  /** What `/version` and `/info` say about this berth. */
  identity?: Partial<EngineIdentity>;
  /** Called for each request that failed with a 5xx (the client gets a generic message). */
  onError?: (err: unknown) => void;
  /**
   * How often to collect what killed operations left in the store (another
   * process's crash, say), in ms; 0 turns it off. Default 60,000. Writes
   * through the server collect before they run anyway.
   */
  sweepIntervalMs?: number;
}

/** A running server over a store. */
export interface ServingStore extends RunningServer {
  /** The image service the faces call. */
  service: ImageService;
}

/**
 * Open the store at `root` and serve it: the Docker Engine API (images) and
 * the explorer page (`/ui/`) on the unix socket and on loopback TCP. The store closes when the server stops.
 */
export async function serveStore(options: ServeStoreOptions): Promise<ServingStore> {
  const { root, identity, onError, sweepIntervalMs = 60_000, ...serverOptions } = options;
  const service = await openImageService({ root });
  let server: RunningServer;
  try {
    const engine = createEngineApi({ service: engineService(service), ...(identity ? { identity } : {}), ...(onError ? { onError } : {}) });
    const ui = createUiFace({ service, ...(onError ? { onError } : {}) });
    server = await startServer({ ...serverOptions, engine, ui });
  } catch (err) {
    await service.close();
    throw err;
  }
  // A bounded background sweep: one cheap check per interval, a GC only when a dead lease or stale file exists.
  const sweep = sweepIntervalMs > 0 ? setInterval(() => void service.store.collectGarbage().catch(() => undefined), sweepIntervalMs) : undefined;
  sweep?.unref();
  const closed = server.closed.then(() => {
    clearInterval(sweep);
    return service.close();
  });
  return {
    url: server.url,
    host: server.host,
    port: server.port,
    ...(server.socketPath ? { socketPath: server.socketPath } : {}),
    close: async () => {
      await server.close();
      await closed;
    },
    closed,
    service,
  };
}
