/**
 * `GET /images/get`, `GET /images/{name}/get` (save) and `POST /images/load`:
 * archives streamed both ways, never held in memory.
 * @module
 */
import { LOAD_LEASE_PARAM } from "@berth/docker-archive";
import { pullImage } from "./distribution.js";
import type { EngineContext } from "./context.js";
import { messageOf, notImplemented } from "./errors.js";
import { boolValueOr, JsonMessageStream } from "./http.js";
import { noSuchImage, repoTagReference } from "./images.js";
import type { LoadEvent } from "./service.js";

/**
 * Save: the names come from the path (`/images/{name}/get`) or the repeated
 * `names` parameter. Every name is resolved before the 200 goes out, so a bad
 * name is a JSON error; the archive follows with Content-Length when the
 * service knows the size, chunked otherwise. A client that goes away cancels
 * the save.
 */
export async function saveImages(ctx: EngineContext): Promise<void> {
  const names = ctx.name ? [ctx.name] : ctx.query.getAll("names");
  let saved: Awaited<ReturnType<typeof ctx.service.save>>;
  try {
    saved = await ctx.service.save(names, { signal: ctx.signal });
  } catch (err) {
    throw names.length === 1 ? noSuchImage(names[0]!, err, { save: true }) : err;
  }
  const { res } = ctx;
  res.statusCode = 200;
  res.setHeader("Content-Type", "application/x-tar");
  if (saved.size !== undefined) res.setHeader("Content-Length", saved.size);
  try {
    await saved.writeTo(res);
  } catch (err) {
    if (ctx.signal.aborted || res.destroyed) return; // the client left: nothing to tell it
    // the headers are out: all that is left is to cut the connection, so the client sees a short archive
    res.destroy(err instanceof Error ? err : new Error(messageOf(err)));
    return;
  }
  res.end();
}

/** Human size as dockerd's progress strings write it (units of 1000, 4 significant digits). */
function humanSize(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

/**
 * dockerd's progress text (moby's `JSONProgress.String` without a terminal
 * width): `[` + one `=` per 2 % + `>` + padding to 50 + `] ` + the current
 * size right-aligned in 8 columns + `/` + the total.
 */
export function progressBar(current: number, total: number): string {
  const half = total > 0 ? Math.floor(Math.floor((current / total) * 100) / 2) : 0;
  const bar = `[${"=".repeat(half)}>${" ".repeat(Math.max(0, 50 - half))}] `;
  return `${bar}${humanSize(current).padStart(8)}/${humanSize(total)}`;
}

/**
 * Load: the request body is the archive. The answer is always a 200 JSON
 * message stream, as dockerd's: `Loading layer` progress per new layer
 * (unless `quiet`, which defaults to true as in dockerd), then `Loaded image`
 * lines; a failure becomes an in-stream `errorDetail` message (the CLI prints
 * it and exits 1). A `manifest.json` layer the archive leaves out comes from
 * the store (as dockerd's loader); `berth-lease=` names the layer lookup that
 * held those layers for this load (see `incremental.ts`).
 */
export async function loadImages(ctx: EngineContext): Promise<void> {
  const quiet = boolValueOr(ctx.query, "quiet", true);
  const out = new JsonMessageStream(ctx.res);
  const onEvent = (e: LoadEvent) => {
    if (e.type === "layer") {
      if (!quiet) {
        void out.write({
          status: "Loading layer",
          progressDetail: { current: e.current, total: e.total },
          progress: progressBar(e.current, e.total),
          id: e.id,
        });
      }
    } else {
      void out.write({ stream: e.tag ? `Loaded image: ${e.tag}\n` : `Loaded image ID: ${e.id}\n` });
    }
  };
  try {
    const lookupLease = ctx.query.get(LOAD_LEASE_PARAM) ?? undefined;
    await ctx.service.load(ctx.req, { onEvent, signal: ctx.signal, ...(lookupLease !== undefined ? { lookupLease } : {}) });
  } catch (err) {
    await out.error(messageOf(err));
  }
  out.end();
}

/**
 * `POST /images/create`. With `fromSrc=-` (`docker import`): the body is a
 * rootfs tar, imported as one layer with `changes` and `message` (default
 * `Imported from -`, as dockerd), tagged `repo`/`tag` when given; the answer
 * is dockerd's stream with one `{"status":"sha256:…"}`. With `fromImage`:
 * a pull (`distribution.ts`). A URL in `fromSrc`: 501, honestly — berth
 * downloads no rootfs tars.
 */
export async function createImage(ctx: EngineContext): Promise<void> {
  const { query } = ctx;
  if (query.get("fromImage")) return pullImage(ctx);
  const src = query.get("fromSrc") ?? "";
  if (src !== "-") throw notImplemented(`import from ${JSON.stringify(src)}`, "berth imports from the request body only (fromSrc=-); it downloads nothing");
  const repo = query.get("repo") ?? "";
  const tag = repo ? repoTagReference(repo, query.get("tag") ?? "") : undefined;
  const id = await ctx.service.importImage(ctx.req, {
    ...(tag ? { tag } : {}),
    message: query.get("message") || `Imported from ${src}`,
    changes: query.getAll("changes"),
    ...(query.get("platform") ? { platform: query.get("platform")! } : {}),
    signal: ctx.signal,
  });
  const out = new JsonMessageStream(ctx.res);
  await out.write({ status: id });
  out.end();
}
