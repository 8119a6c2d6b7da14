/**
 * A store to explore, served by `serveStore` on a free loopback port:
 * `base:1`; `waste:1` (base + a layer that removes its 200 kB `var/log/big.log`
 * and adds `etc/motd`); `app:1` (base + a layer that overwrites `bin/sh` and adds `app/`).
 */
import { makeTar } from "@berth/image-store/tar-fixture";
import { serveStore, type ServingStore } from "../src/index.js";
import { tempDir } from "./helpers.js";

const stream = (files: Record<string, string>) =>
  (async function* () {
    yield makeTar(files);
  })();

/** The store, served; `close()` stops the server and removes the store. */
export async function exploredStore(): Promise<{ server: ServingStore; base: string; close: () => Promise<void> }> {
  const { dir, cleanup } = tempDir("berth-ui-");
  const server = await serveStore({ root: dir, port: 0, log: { format: "none" }, sweepIntervalMs: 0 });
  const svc = server.service;
  await svc.import(stream({ "bin/sh": "#!shell", "usr/lib/libc.so": "c".repeat(5000), "var/log/big.log": "L".repeat(200_000) }), {
    tags: ["base:1"],
    changes: ['CMD ["/bin/sh"]', "ENV PATH=/usr/bin:/bin"],
  });
  await svc.build({ base: "base:1", layers: [stream({ "var/log/.wh.big.log": "", "etc/motd": "hello" })], tags: ["waste:1"], createdBy: "RUN rm /var/log/big.log" });
  await svc.build({
    base: "base:1",
    layers: [stream({ "bin/sh": "#!a newer shell", "app/run": "run", "app/data.bin": "d".repeat(30_000) })],
    tags: ["app:1"],
    createdBy: "COPY app /app",
    changes: ["WORKDIR /app", "EXPOSE 8080", "LABEL org.example.team=berth"],
  });
  return {
    server,
    base: server.url,
    close: async () => {
      await server.close();
      cleanup();
    },
  };
}
