/**
 * The image endpoints that answer with one JSON body: list, inspect,
 * history, tag, delete, prune. Each parses its query, calls the image service
 * once and shapes the answer for the request's version.
 * @module
 */
import { InvalidArgumentError, NotFoundError } from "@berth/digest";
import { isValidTag, parseReference } from "@berth/oci";
import type { EngineContext } from "./context.js";
import { EngineErrorCode } from "./errors.js";
import { parseFilters } from "./filters.js";
import { boolValue, sendEmpty, sendJson } from "./http.js";
import { deleteItems, historyItems, imageInspect, imageSummary, pruneReport } from "./shape.js";
import { versionBelow } from "./versions.js";

/**
 * How dockerd names an image it did not find (moby's `ErrImageDoesNotExist`):
 * the familiar reference with `:latest` added to a bare name (a short ID
 * too: `abc123` → `abc123:latest`, as `ParseAnyReference` reads it),
 * `sha256:<hex>` for a 64-hex ID, the name as given when it parses as neither.
 */
export function familiarNotFoundName(name: string): string {
  if (/^[a-f0-9]{64}$/.test(name)) return `sha256:${name}`;
  if (/^sha256:[a-f0-9]{64}$/.test(name)) return name;
  try {
    return parseReference(name).familiar;
  } catch {
    return name;
  }
}

/**
 * dockerd's answer when a name resolves to nothing, whatever words the
 * service chose: `No such image: <name>` (what the CLI prints after "Error
 * response from daemon: "). Save is dockerd's one exception: a `name:tag` or
 * `name@digest` missing from the reference store is `reference does not exist`.
 * Other errors pass unchanged.
 */
export function noSuchImage(name: string, err: unknown, opts: { save?: boolean } = {}): unknown {
  if (!(err instanceof NotFoundError)) return err;
  let message = `No such image: ${familiarNotFoundName(name)}`;
  if (opts.save) {
    try {
      const r = parseReference(name, { defaultTag: false });
      if (r.tag || r.digest) message = "reference does not exist";
    } catch {
      // not a reference: an ID or prefix
    }
  }
  return new NotFoundError(message, { code: err.code, cause: err });
}

/** Call the service for the image `name`, turning not-found into dockerd's text. */
async function forName<T>(name: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw noSuchImage(name, err);
  }
}

function requireName(ctx: EngineContext): string {
  if (ctx.name.trim() === "") {
    throw new InvalidArgumentError("image name cannot be blank", { code: EngineErrorCode.InvalidParameter });
  }
  return ctx.name;
}

/** `GET /images/json` (`all`, `filters`, `filter` before 1.25, `shared-size` 1.42+, `manifests` 1.47+). */
export async function listImages(ctx: EngineContext): Promise<void> {
  const { query, version } = ctx;
  const filters = parseFilters(query.get("filters"));
  // API < 1.25: the `filter` parameter is a reference glob
  const legacyFilter = query.get("filter");
  if (versionBelow(version, "1.25") && legacyFilter && !filters.reference) filters.reference = [legacyFilter];
  const images = await ctx.service.list({
    all: boolValue(query, "all"),
    filters,
    sharedSize: !versionBelow(version, "1.42") && boolValue(query, "shared-size"),
    manifests: !versionBelow(version, "1.47") && boolValue(query, "manifests"),
  });
  sendJson(
    ctx.res,
    200,
    images.map((s) => imageSummary(version, s)),
  );
}

/** `GET /images/{name}/json` (`manifests` 1.48+). */
export async function inspectImage(ctx: EngineContext): Promise<void> {
  const name = requireName(ctx);
  const manifests = !versionBelow(ctx.version, "1.48") && boolValue(ctx.query, "manifests");
  const data = await forName(name, () => ctx.service.inspect(name, { manifests }));
  sendJson(ctx.res, 200, imageInspect(ctx.version, data));
}

/** `GET /images/{name}/history`. */
export async function imageHistory(ctx: EngineContext): Promise<void> {
  const name = requireName(ctx);
  const items = await forName(name, () => ctx.service.history(name));
  sendJson(ctx.res, 200, historyItems(items));
}

/**
 * dockerd's `RepoTagReference`: `repo` (a repository, maybe fully qualified,
 * maybe with a tag) plus an optional `tag` as one normalised reference; a
 * digest reference and the ambiguous name `sha256` are refused.
 * @throws InvalidArgumentError `ERR_ENGINE_INVALID_PARAMETER`
 */
export function repoTagReference(repo: string, tag: string): string {
  const bad = (why: string) => new InvalidArgumentError(why, { code: EngineErrorCode.InvalidParameter });
  if (tag !== "" && !isValidTag(tag)) throw bad(`invalid tag format: ${JSON.stringify(tag)}`);
  let named: ReturnType<typeof parseReference>;
  try {
    named = parseReference(repo, { defaultTag: false });
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (named.digest) throw bad(`cannot tag or import with a digest reference: ${repo}`);
  if (named.familiarName === "sha256") throw bad("refusing to create an ambiguous tag using digest algorithm as name");
  // `tag` replaces a tag `repo` carries (the docker CLI sends `repo=name:tag` for import), else `latest`
  return `${named.name}:${tag || named.tag || "latest"}`;
}

/**
 * `POST /images/{name}/tag?repo=&tag=` → 201, empty body (what the CLI
 * expects); the target checked by {@link repoTagReference}.
 */
export async function tagImage(ctx: EngineContext): Promise<void> {
  const name = requireName(ctx);
  const target = repoTagReference(ctx.query.get("repo") ?? "", ctx.query.get("tag") ?? "");
  await forName(name, () => ctx.service.tag(name, target));
  sendEmpty(ctx.res, 201);
}

/** `DELETE /images/{name}` (`force`, `noprune`). */
export async function deleteImage(ctx: EngineContext): Promise<void> {
  const name = requireName(ctx);
  const items = await forName(name, () =>
    ctx.service.remove(name, { force: boolValue(ctx.query, "force"), prune: !boolValue(ctx.query, "noprune") }),
  );
  sendJson(ctx.res, 200, deleteItems(items));
}

/** `POST /images/prune` (`filters`: dangling, until, label, label!). */
export async function pruneImages(ctx: EngineContext): Promise<void> {
  const result = await ctx.service.prune(parseFilters(ctx.query.get("filters")));
  sendJson(ctx.res, 200, pruneReport(result));
}
