/**
 * Fuzzing the server's front door (fast-check): random methods, paths
 * (traversal, encodings, long names, registry and Engine API shapes), queries
 * (filters JSON, booleans, versions) and headers against the registry face
 * (in-memory backend) and the Engine API face (over a real store), in one
 * process. Every answer is a 2xx/3xx/4xx (or 501 for what berth does not
 * implement) with a well-formed body — never another 5xx, a hang or a crash.
 *
 * 5,000 requests by default; `BERTH_FUZZ_RUNS=100000` for the long run,
 * `BERTH_FUZZ_SEED` to replay a reported seed (RELIABILITY.md).
 */
import { openImageService } from "@berth/image-service";
import { makeTar } from "@berth/image-store/tar-fixture";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEngineApi } from "../src/engine/api.js";
import { engineService } from "../src/engine/adapter.js";
import { statusOf } from "../src/engine/errors.js";
import { type RunningServer, startServer } from "../src/index.js";
import { tempDir } from "./helpers.js";
import { MemoryBackend } from "./memory-backend.js";

const RUNS = Number(process.env.BERTH_FUZZ_RUNS ?? 5000);
const SEED = process.env.BERTH_FUZZ_SEED === undefined ? undefined : Number(process.env.BERTH_FUZZ_SEED);

const tmp = tempDir("berth-fuzz-");
let server: RunningServer;
const failures: unknown[] = [];
let closeService: () => Promise<void>;
beforeAll(async () => {
  const svc = await openImageService({ root: tmp.dir });
  closeService = () => svc.close();
  const layer = makeTar({ "a.txt": "fuzz\n" });
  await svc.import((async function* () {
    yield layer;
  })(), { tags: ["fuzz:1"], changes: ["LABEL a=b"] });
  const engine = createEngineApi({ service: engineService(svc), onError: (err) => failures.push(err) });
  server = await startServer({ port: 0, registry: { backend: new MemoryBackend() }, engine, log: { format: "none" }, shutdownGraceMs: 1000 });
});
afterAll(async () => {
  await server?.close();
  await closeService?.();
  tmp.cleanup();
});

const segment = fc.oneof(
  fc.constantFrom("v2", "v1.41", "v1.24", "v9.99", "images", "json", "fuzz", "library", "busybox", "manifests", "blobs", "uploads", "tags", "list"),
  fc.constantFrom("_catalog", "referrers", "history", "get", "load", "prune", "create", "push", "tag", "search", "info", "version", "_ping", "system", "df"),
  fc.constantFrom("..", ".", "%2e%2e", "%2F", "%00", "sha256:" + "a".repeat(64), "latest", "fuzz:1", "x".repeat(300)),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
);
const name = fc.oneof(fc.constantFrom("fuzz", "library/fuzz", "a/b/c", "UPPER", "-x", "a..b", "fuzz:1", "sha256:" + "0".repeat(64)), segment);
const routes = [
  "/images/json", "/images/{n}/json", "/images/{n}/history", "/images/{n}/tag", "/images/{n}", "/images/get", "/images/{n}/get",
  "/images/load", "/images/prune", "/images/create", "/images/{n}/push", "/version", "/_ping", "/info", "/system/df",
  "/v2/", "/v2/_catalog", "/v2/{n}/tags/list", "/v2/{n}/manifests/{n}", "/v2/{n}/blobs/{n}", "/v2/{n}/blobs/uploads/", "/v2/{n}/blobs/uploads/{n}", "/v2/{n}/referrers/{n}",
];
/** A real route with random names in it (sometimes under a version prefix), or random segments. */
const path = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...routes), fc.array(name, { minLength: 4, maxLength: 4 }), fc.constantFrom("", "/v1.41", "/v1.24", "/v1.47", "/v0.1", "/v1.99")).map(([t, names, v]) => {
    let i = 0;
    const filled = t.replace(/\{n\}/g, () => names[i++] as string);
    return filled.startsWith("/v2") ? filled : `${v}${filled}`;
  }) },
  { weight: 1, arbitrary: fc.array(segment, { minLength: 1, maxLength: 7 }).map((s) => `/${s.join("/")}`) },
);
const queryValue = fc.oneof(
  fc.constantFrom("1", "0", "true", "false", "", "{}", "[]", "null", '{"dangling":["true"]}', '{"reference":["fuzz"]}', '{"label":{"a=b":true}}', '{"until":["x"]}'),
  fc.json({ maxDepth: 2 }),
  fc.string({ maxLength: 20 }),
);
const query = fc.dictionary(fc.constantFrom("all", "filters", "filter", "digests", "shared-size", "force", "noprune", "names", "tag", "repo", "quiet", "n", "last", "digest", "mount", "from", "platform"), queryValue, { maxKeys: 4 });
const headers = fc.dictionary(
  fc.constantFrom("content-type", "authorization", "range", "content-range", "x-registry-auth", "accept", "content-length-hint"),
  fc.oneof(fc.constantFrom("application/json", "application/x-tar", "Bearer x", "Basic Zm9vOmJhcg==", "bytes=0-10", "0-5", "e30="), fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, ""))),
  { maxKeys: 3 },
);
const request = fc.record({
  method: fc.constantFrom("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"),
  path,
  query,
  headers,
  body: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }),
});

describe("fuzzing the server's front door (fast-check)", () => {
  it(`${RUNS} random requests: never a 5xx, bodies well formed`, async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const url = new URL(server.url);
        url.pathname = r.path;
        for (const [k, v] of Object.entries(r.query)) url.searchParams.set(k, v);
        const res = await fetch(url, {
          method: r.method,
          headers: r.headers,
          ...(r.body && !["GET", "HEAD"].includes(r.method) ? { body: r.body } : {}),
          signal: AbortSignal.timeout(10_000),
        });
        const body = Buffer.from(await res.arrayBuffer());
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        // 501 is the honest answer for what berth does not implement yet (pull from a registry, say)
        if (res.status !== 501) expect(res.status, `${r.method} ${url.pathname}${url.search}: ${body.toString("utf8", 0, 200)}`).toBeLessThan(500);
        if ((res.headers.get("content-type") ?? "").includes("json") && body.length > 0 && r.method !== "HEAD") {
          // NDJSON streams (progress) are one JSON document per line
          for (const line of body.toString("utf8").split("\n").filter(Boolean)) JSON.parse(line);
        }
      }),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    expect(failures.filter((err) => statusOf(err) !== 501)).toEqual([]);
    // the requests reach past the router: successes and several kinds of refusal
    const codes = [...statuses.keys()];
    expect(codes.some((c) => c < 300)).toBe(true);
    expect(codes.filter((c) => c >= 400).length).toBeGreaterThanOrEqual(4);
  }, 600_000);
});
