/**
 * `serveStore`: the server over a berth store root, as `berth serve` runs it —
 * the image service opened on the root, the Engine API and explorer faces mounted on it,
 * the store closed when the server stops.
 * @module
 */
import { type ImageService, openImageService, StoreRegistryBackend, type StoreRegistryBackendOptions } from "@berth/image-service";
import { createEngineApi } from "./engine/api.js";
import { engineService } from "./engine/adapter.js";
import type { EngineIdentity } from "./engine/context.js";
import type { ServerOptions } from "./options.js";
import { type RunningServer, startServer } from "./server.js";
import { createUiFace } from "./ui/face.js";

/** Options of {@link serveStore}: the server's, less the faces, plus the store root. */
export interface ServeStoreOptions extends Omit<ServerOptions, "engine" | "registry" | "ui"> {
  /** The registry at `/v2/` over the store: its options, or `false` for none. Default: on, deletes allowed. */
  registry?: (StoreRegistryBackendOptions & { deleteEnabled?: boolean }) | false;
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
  /** The registry's storage over the store (absent with `registry: false`). */
  registry?: StoreRegistryBackend;
}

/**
 * Open the store at `root` and serve it: the OCI registry at `/v2/` (the
 * store's images and whatever clients push, see `StoreRegistryBackend`), the
 * Docker Engine API (images) and the explorer page (`/ui/`) on the unix
 * socket and on loopback TCP. The store closes when the server stops.
 */
export async function serveStore(options: ServeStoreOptions): Promise<ServingStore> {
  const { root, identity, onError, sweepIntervalMs = 60_000, registry: registryOptions = {}, ...serverOptions } = options;
  const service = await openImageService({ root });
  let server: RunningServer;
  let backend: StoreRegistryBackend | undefined;
  try {
    const engine = createEngineApi({ service: engineService(service), ...(identity ? { identity } : {}), ...(onError ? { onError } : {}) });
    const ui = createUiFace({ service, ...(onError ? { onError } : {}) });
    let registry: ServerOptions["registry"];
    if (registryOptions !== false) {
      const { deleteEnabled, ...backendOptions } = registryOptions;
      backend = new StoreRegistryBackend(service.store, backendOptions);
      registry = { backend, ...(deleteEnabled !== undefined ? { deleteEnabled } : {}) };
    }
    server = await startServer({ ...serverOptions, engine, ui, ...(registry ? { registry } : {}) });
  } catch (err) {
    await backend?.close();
    await service.close();
    throw err;
  }
  // A bounded background sweep: idle uploads and stale registry records, then one cheap check per interval, a GC only when a dead lease or stale file exists.
  const sweep =
    sweepIntervalMs > 0
      ? setInterval(
          () =>
            void (async () => {
              await backend?.sweep().catch(() => undefined);
              await service.store.collectGarbage().catch(() => undefined);
            })(),
          sweepIntervalMs,
        )
      : undefined;
  sweep?.unref();
  const closed = server.closed.then(async () => {
    clearInterval(sweep);
    await backend?.close();
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
    ...(backend ? { registry: backend } : {}),
  };
}
