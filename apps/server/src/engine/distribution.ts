/**
 * The registry endpoints of the Engine API: `POST /images/create?fromImage=`
 * (pull), `POST /images/{name}/push` and `POST /auth`, over the image
 * service's pull, push and credential check (`@berth/registry` below it).
 * This face only parses (`X-Registry-Auth`, the reference) and writes
 * dockerd's progress messages: the status words dockerd writes, one message
 * per layer step, the ID a layer's short blob digest.
 *
 * Errors before the first message are ordinary error responses (dockerd
 * answers a pull of a missing image with 404, in its words: `manifest for
 * NAME:TAG not found: manifest unknown: …`); after it, they are in-stream
 * `errorDetail` messages, as dockerd writes them.
 * @module
 */
import { BerthError, type Digest, hasCode, InvalidArgumentError, NotFoundError } from "@berth/digest";
import type { RegistryCredential, RegistryEvent } from "@berth/image-service";
import { isValidTag, parseReference } from "@berth/oci";
import { progressBar } from "./archive.js";
import type { EngineContext } from "./context.js";
import { EngineErrorCode, messageOf, notImplemented } from "./errors.js";
import { JsonMessageStream, readSmallBody, sendJson } from "./http.js";

/** Largest `POST /auth` body and `X-Registry-Auth` header accepted. */
const MAX_AUTH_SIZE = 64 << 10;

function invalid(message: string): InvalidArgumentError {
  return new InvalidArgumentError(message, { code: EngineErrorCode.InvalidParameter });
}

/** An AuthConfig (dockerd's JSON) as a credential; undefined when it carries none. */
function credentialOf(doc: unknown, what: string): RegistryCredential | undefined {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw invalid(`${what}: not a JSON object`);
  const c = doc as Record<string, unknown>;
  const str = (k: string) => (typeof c[k] === "string" && c[k] !== "" ? (c[k] as string) : undefined);
  let username = str("username");
  let password = str("password");
  const auth = str("auth");
  if (auth && username === undefined) {
    // `auth` is base64 of user:password (what config.json holds)
    const plain = Buffer.from(auth, "base64").toString("utf8");
    const colon = plain.indexOf(":");
    if (colon < 0) throw invalid(`${what}: auth is not base64 of user:password`);
    username = plain.slice(0, colon);
    password = plain.slice(colon + 1);
  }
  const identityToken = str("identitytoken");
  const registryToken = str("registrytoken");
  if (!username && !password && !identityToken && !registryToken) return undefined;
  return {
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    ...(identityToken ? { identityToken } : {}),
    ...(registryToken ? { registryToken } : {}),
  };
}

/**
 * The credential of `X-Registry-Auth` (base64url JSON, as the docker CLI
 * sends it; standard base64 accepted too), or undefined when absent or empty.
 * @throws InvalidArgumentError `ERR_ENGINE_INVALID_PARAMETER` when it is not that
 */
export function registryAuthHeader(value: string | string[] | undefined): RegistryCredential | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === "") return undefined;
  if (v.length > MAX_AUTH_SIZE) throw invalid("X-Registry-Auth is too large");
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(v.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("utf8"));
  } catch {
    throw invalid("invalid X-Registry-Auth header: not base64-encoded JSON");
  }
  return credentialOf(doc, "X-Registry-Auth");
}

const short = (d: Digest) => d.slice(7, 19);

/** A progress stream whose first message commits the response to 200 (errors before it stay HTTP errors). */
class LazyStream {
  #out: JsonMessageStream | undefined;
  constructor(private readonly ctx: EngineContext) {}
  get started(): boolean {
    return this.#out !== undefined;
  }
  write(m: Record<string, unknown>): void {
    this.#out ??= new JsonMessageStream(this.ctx.res);
    void this.#out.write(m);
  }
  async fail(err: unknown): Promise<void> {
    await this.#out!.error(messageOf(err));
  }
  end(): void {
    this.#out?.end();
  }
}

/**
 * Layer steps as dockerd words them, for the layer blobs of a resolved image
 * (the config blob is not shown; a pull of an image the store holds shows
 * none, as dockerd checks for the image before any layer). `done` gives the
 * statuses of a finished layer, in order.
 */
function layerMessages(out: LazyStream, first: (id: string) => string, done: (e: Extract<RegistryEvent, { type: "blob-done" }>) => string[], moving: string) {
  const layers = new Set<Digest>();
  return (e: RegistryEvent) => {
    if (e.type === "resolved") {
      if (e.present) return;
      for (const l of e.layers) {
        if (layers.has(l.digest)) continue;
        layers.add(l.digest);
        out.write({ status: first(short(l.digest)), progressDetail: {}, id: short(l.digest) });
      }
      return;
    }
    if (e.type === "manifest" || !layers.has(e.digest)) return;
    if (e.type === "blob-progress")
      out.write({ status: moving, progressDetail: { current: e.bytes, total: e.size }, progress: progressBar(e.bytes, e.size), id: short(e.digest) });
    else if (e.type === "blob-done") for (const status of done(e)) out.write({ status, progressDetail: {}, id: short(e.digest) });
  };
}

/**
 * `POST /images/create?fromImage=NAME&tag=TAG[&platform=]`: `docker pull`.
 * `tag` may be a digest (`NAME@sha256:…`); an empty tag asks for every tag
 * (`docker pull -a`), which berth does not do (501).
 */
export async function pullImage(ctx: EngineContext): Promise<void> {
  const from = ctx.query.get("fromImage") ?? "";
  const tag = ctx.query.get("tag") ?? "";
  let named: ReturnType<typeof parseReference>;
  try {
    named = parseReference(from, { defaultTag: false });
  } catch (err) {
    throw invalid((err as Error).message);
  }
  let reference: string;
  if (tag.startsWith("sha256:")) reference = `${named.name}@${tag}`;
  else if (tag !== "") {
    if (!isValidTag(tag)) throw invalid(`invalid tag format: ${JSON.stringify(tag)}`);
    reference = `${named.name}:${tag}`;
  } else if (named.digest || named.tag) reference = named.string;
  else throw notImplemented("pull of every tag (docker pull -a)", "pull one tag or digest at a time");
  const credential = registryAuthHeader(ctx.req.headers["x-registry-auth"]);
  const platform = ctx.query.get("platform") || undefined;
  const out = new LazyStream(ctx);
  const layers = layerMessages(
    out,
    () => "Pulling fs layer",
    // dockerd: the download's end (its digest verified), then the layer's registration
    (e) => (e.status === "exists" ? ["Already exists"] : ["Verifying Checksum", "Download complete", "Pull complete"]),
    "Downloading",
  );
  try {
    const r = await ctx.service.pull(reference, {
      signal: ctx.signal,
      ...(credential ? { credential } : {}),
      ...(platform ? { platform } : {}),
      onProgress: (e) => {
        if (e.type === "resolved") out.write({ status: `Pulling from ${e.path}`, id: e.tag ?? e.digest });
        layers(e);
      },
    });
    out.write({ status: `Digest: ${r.digest}` });
    out.write({ status: `Status: ${r.status === "up-to-date" ? "Image is up to date" : "Downloaded newer image"} for ${r.familiar}` });
  } catch (err) {
    if (!out.started) throw dockerdNotFound(err, reference);
    await out.fail(err);
  }
  out.end();
}

/** The lower-case messages of the Distribution spec's error codes, as docker's errcode package prints them. */
const ERROR_CODE_MESSAGES: Record<string, string> = {
  MANIFEST_UNKNOWN: "manifest unknown",
  NAME_UNKNOWN: "repository name not known to registry",
};

/**
 * A registry's 404 for a pull in dockerd's words (moby's
 * `distribution.notFoundError`): `manifest for NAME:TAG not found: CODE: MESSAGE`,
 * `repository NAME not found: CODE: MESSAGE`; other errors as they are.
 */
function dockerdNotFound(err: unknown, reference: string): unknown {
  const manifest = hasCode(err, "ERR_MANIFEST_NOT_FOUND");
  if (!(err instanceof BerthError) || !(manifest || hasCode(err, "ERR_REPOSITORY_NOT_FOUND"))) return err;
  const first = (err.details?.errors as Array<{ code?: unknown; message?: unknown }> | undefined)?.[0];
  if (typeof first?.code !== "string") return err;
  const cause = `${ERROR_CODE_MESSAGES[first.code] ?? first.code.toLowerCase().replace(/_/g, " ")}: ${typeof first.message === "string" ? first.message : ""}`;
  const ref = parseReference(reference);
  const message = manifest ? `manifest for ${ref.familiar} not found: ${cause}` : `repository ${ref.familiarName} not found: ${cause}`;
  return new NotFoundError(message, { code: err.code, details: err.details, cause: err });
}

/** `POST /images/{name}/push?tag=`: `docker push` of one tag (an empty tag: the name's tag, else `latest`). */
export async function pushImage(ctx: EngineContext): Promise<void> {
  const tag = ctx.query.get("tag") ?? "";
  let named: ReturnType<typeof parseReference>;
  try {
    named = parseReference(ctx.name, { defaultTag: false });
  } catch (err) {
    throw invalid((err as Error).message);
  }
  if (tag !== "" && !isValidTag(tag)) throw invalid(`invalid tag format: ${JSON.stringify(tag)}`);
  if (tag === "" && !named.tag && !named.digest) throw notImplemented("push of every tag of a repository", "push one tag at a time");
  const reference = tag !== "" ? `${named.name}:${tag}` : named.string;
  const credential = registryAuthHeader(ctx.req.headers["x-registry-auth"]);
  const out = new LazyStream(ctx);
  const layers = layerMessages(
    out,
    () => "Preparing",
    (e) => [e.status === "exists" ? "Layer already exists" : e.status === "mounted" && e.mountedFrom ? `Mounted from ${e.mountedFrom}` : "Pushed"],
    "Pushing",
  );
  try {
    const r = await ctx.service.push(reference, {
      signal: ctx.signal,
      ...(credential ? { credential } : {}),
      onProgress: (e) => {
        if (e.type === "resolved") out.write({ status: `The push refers to repository [${e.name}]` });
        layers(e);
      },
    });
    out.write({ status: `${r.tag}: digest: ${r.digest} size: ${r.size}` });
    out.write({ progressDetail: {}, aux: { Tag: r.tag, Digest: r.digest, Size: r.size } });
  } catch (err) {
    if (!out.started) throw err;
    await out.fail(err);
  }
  out.end();
}

/**
 * `POST /auth` (`docker login`): the AuthConfig's credential checked against
 * `serveraddress` (Docker Hub when empty), nothing stored; dockerd's answer.
 */
export async function checkAuth(ctx: EngineContext): Promise<void> {
  const body = await readSmallBody(ctx.req, MAX_AUTH_SIZE, "the login request");
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString("utf8"));
  } catch {
    throw invalid("the login request is not JSON");
  }
  const credential = credentialOf(doc, "the login request") ?? {};
  const address = (doc as { serveraddress?: unknown }).serveraddress;
  await ctx.service.checkLogin(registryHost(typeof address === "string" ? address : ""), credential, ctx.signal);
  sendJson(ctx.res, 200, { Status: "Login Succeeded", IdentityToken: "" });
}

/** `serveraddress` as a registry host: scheme and path dropped; Docker Hub's legacy index address is `docker.io`. */
export function registryHost(address: string): string {
  const host = address
    .trim()
    .replace(/^[a-z]+:\/\//i, "")
    .replace(/\/.*$/, "");
  return host === "" || host === "index.docker.io" ? "docker.io" : host;
}
