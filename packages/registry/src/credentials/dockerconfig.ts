/**
 * Credentials from Docker's `config.json`, read and written the way the
 * docker CLI does, so `docker login` works for berth and `berth login` for
 * docker:
 *
 * - the file is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`;
 * - `credHelpers[host]` names the helper for one registry, else `credsStore`
 *   the helper for all, else `auths[key]` holds `auth` (base64 `user:password`)
 *   or `identitytoken` (an OAuth2 refresh token) or `registrytoken`;
 * - keys are matched as docker's `ConvertToHostname` does (scheme and path
 *   dropped: `https://127.0.0.1:5000/v1/` is `127.0.0.1:5000`); Docker Hub's
 *   key is `https://index.docker.io/v1/`;
 * - a helper's `Username` of `<token>` means its `Secret` is an identity token.
 *
 * Writes keep every other field, create the directory 0700 and the file
 * 0600, and replace the file atomically (temp file, fsync, rename).
 * @module
 */
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { FailedPreconditionError } from "@berth/digest";
import type { CredentialProvider } from "../client.js";
import { REGISTRY_ERROR_CODES } from "../errors.js";
import type { Credential } from "../transport/auth.js";
import { type HelperOptions, helperErase, helperGet, helperStore } from "./helper.js";

/** Docker Hub's key in config.json (and the server URL its helpers are asked about). */
export const DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/";

/** Options shared by the config.json functions. */
export interface DockerConfigOptions extends HelperOptions {
  /** The directory of config.json. Default `$DOCKER_CONFIG`, else `~/.docker`. */
  configDir?: string;
}

/** One `auths` entry. */
export interface DockerAuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
  [k: string]: unknown;
}

/** The parts of config.json berth reads (everything else is kept as it is). */
export interface DockerConfig {
  auths?: Record<string, DockerAuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

/** The config.json path for these options. */
export function dockerConfigFile(options: DockerConfigOptions = {}): string {
  const env = options.env ?? process.env;
  const dir = options.configDir ?? env.DOCKER_CONFIG ?? path.join(env.HOME ?? homedir(), ".docker");
  return path.join(dir, "config.json");
}

function configError(file: string, why: string, cause?: unknown): FailedPreconditionError {
  return new FailedPreconditionError(`${file}: ${why}`, { code: REGISTRY_ERROR_CODES.DOCKER_CONFIG, ...(cause !== undefined ? { cause } : {}) });
}

/**
 * Read config.json (`{}` when it does not exist).
 * @throws FailedPreconditionError `ERR_DOCKER_CONFIG` for a file that is not a JSON object
 */
export async function readDockerConfig(options: DockerConfigOptions = {}): Promise<DockerConfig> {
  const file = dockerConfigFile(options);
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw err;
  }
  if (text.trim() === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (cause) {
    throw configError(file, "not valid JSON", cause);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw configError(file, "not a JSON object");
  const c = v as DockerConfig;
  if (c.auths !== undefined && (typeof c.auths !== "object" || c.auths === null)) throw configError(file, '"auths" is not an object');
  return c;
}

/** Write config.json atomically, 0600, keeping what the caller kept in `config`. */
export async function writeDockerConfig(config: DockerConfig, options: DockerConfigOptions = {}): Promise<string> {
  const file = dockerConfigFile(options);
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  const fh = await fsp.open(tmp, "wx", 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(config, null, "\t")}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  return file;
}

/** docker's `ConvertToHostname`: `https://host:5000/v1/` → `host:5000`. */
export function hostOfKey(key: string): string {
  let h = key;
  if (h.startsWith("http://")) h = h.slice(7);
  else if (h.startsWith("https://")) h = h.slice(8);
  h = h.split("/")[0] ?? h;
  return h === "index.docker.io" || h === "registry-1.docker.io" ? "docker.io" : h;
}

/** The key docker writes for a registry host (`docker.io` → `https://index.docker.io/v1/`). */
export function configKey(host: string): string {
  return hostOfKey(host) === "docker.io" ? DOCKER_HUB_CONFIG_KEY : host;
}

/** The helper that holds a host's credentials, if any (`credHelpers`, then `credsStore`). */
export function helperFor(config: DockerConfig, host: string): string | undefined {
  const h = hostOfKey(host);
  for (const [k, v] of Object.entries(config.credHelpers ?? {})) if (hostOfKey(k) === h && v) return v;
  return config.credsStore || undefined;
}

function decodeAuth(entry: DockerAuthEntry, file: string, key: string): Credential | undefined {
  if (entry.identitytoken) return { identityToken: entry.identitytoken, ...(entry.username ? { username: entry.username } : {}) };
  if (entry.registrytoken) return { registryToken: entry.registrytoken };
  if (entry.auth) {
    const text = Buffer.from(entry.auth, "base64").toString("utf8");
    const i = text.indexOf(":");
    if (i <= 0) throw configError(file, `auths[${JSON.stringify(key)}].auth is not base64 of "user:password"`);
    return { username: text.slice(0, i), password: text.slice(i + 1) };
  }
  if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  return undefined;
}

/** A host's credential from a config already read (helpers are run as needed). */
export async function credentialFromConfig(config: DockerConfig, host: string, options: DockerConfigOptions = {}): Promise<Credential | undefined> {
  const h = hostOfKey(host);
  const helper = helperFor(config, h);
  if (helper) {
    const got = await helperGet(helper, configKey(h), options);
    if (!got) return undefined;
    return got.Username === "<token>" ? { identityToken: got.Secret } : { username: got.Username, password: got.Secret };
  }
  const file = dockerConfigFile(options);
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (hostOfKey(key) !== h || typeof entry !== "object" || entry === null) continue;
    const c = decodeAuth(entry, file, key);
    if (c) return c;
  }
  return undefined;
}

/**
 * A {@link CredentialProvider} reading Docker's config.json (at each lookup,
 * so a `docker login` in between is seen).
 */
export function dockerCredentials(options: DockerConfigOptions = {}): CredentialProvider {
  return async (host) => credentialFromConfig(await readDockerConfig(options), host, options);
}

/** Where {@link storeCredential} put a credential. */
export interface StoredCredential {
  /** config.json's path. */
  configFile: string;
  /** The helper that holds the secret, or undefined when it is in config.json (`auth`). */
  helper: string | undefined;
}

/**
 * Save a credential as `docker login` does: into the host's helper when
 * config.json names one (config.json then gets an empty `auths` entry),
 * else as `auths[key].auth` (or `identitytoken`).
 */
export async function storeCredential(host: string, credential: Credential, options: DockerConfigOptions = {}): Promise<StoredCredential> {
  const config = await readDockerConfig(options);
  const key = configKey(host);
  const helper = helperFor(config, host);
  const auths = { ...(config.auths ?? {}) };
  for (const k of Object.keys(auths)) if (hostOfKey(k) === hostOfKey(host) && k !== key) delete auths[k];
  if (helper) {
    const secret = credential.identityToken ?? credential.password;
    const username = credential.identityToken ? "<token>" : credential.username;
    if (secret === undefined || username === undefined) throw configError(dockerConfigFile(options), "nothing to store: no password or identity token");
    await helperStore(helper, { ServerURL: key, Username: username, Secret: secret }, options);
    auths[key] = {};
  } else if (credential.identityToken) {
    auths[key] = { identitytoken: credential.identityToken, ...(credential.username ? { username: credential.username } : {}) };
  } else if (credential.username !== undefined && credential.password !== undefined) {
    auths[key] = { auth: Buffer.from(`${credential.username}:${credential.password}`).toString("base64") };
  } else {
    throw configError(dockerConfigFile(options), "nothing to store: no password or identity token");
  }
  const configFile = await writeDockerConfig({ ...config, auths }, options);
  return { configFile, helper };
}

/**
 * Remove a host's credential as `docker logout` does (from its helper and
 * from `auths`). False when there was none in config.json.
 */
export async function eraseCredential(host: string, options: DockerConfigOptions = {}): Promise<boolean> {
  const config = await readDockerConfig(options);
  const helper = helperFor(config, host);
  if (helper) await helperErase(helper, configKey(host), options);
  const auths = { ...(config.auths ?? {}) };
  let had = false;
  for (const k of Object.keys(auths)) {
    if (hostOfKey(k) === hostOfKey(host)) {
      delete auths[k];
      had = true;
    }
  }
  if (had) await writeDockerConfig({ ...config, auths }, options);
  return had || helper !== undefined;
}
