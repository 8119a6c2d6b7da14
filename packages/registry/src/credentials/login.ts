/**
 * `login` and `logout` as the docker CLI does them: check the credential
 * against the registry (`GET /v2/` through its auth: Basic, or a token
 * fetched with the credential), then save it in config.json or its helper.
 * @module
 */
import { RegistryClient, type RegistryClientOptions } from "../client.js";
import { registryError } from "../errors.js";
import { type Credential, parseErrorBody } from "../transport/auth.js";
import { readBody } from "../transport/types.js";
import { type DockerConfigOptions, eraseCredential, type StoredCredential, storeCredential } from "./dockerconfig.js";

/** Options of {@link login}. */
export interface LoginOptions extends DockerConfigOptions, Pick<RegistryClientOptions, "insecure" | "userAgent" | "retry"> {
  signal?: AbortSignal;
}

/**
 * Check a credential against `host`'s registry as `docker login` does
 * (`GET /v2/` through its auth: Basic, or a token fetched with the
 * credential), storing nothing. What a daemon's `POST /auth` does.
 * @throws FailedPreconditionError `ERR_REGISTRY_UNAUTHORIZED` when the registry refuses it
 */
export async function checkCredential(host: string, credential: Credential, options: Omit<LoginOptions, keyof DockerConfigOptions> = {}): Promise<void> {
  const client = new RegistryClient({
    credentials: async () => credential,
    ...(options.insecure !== undefined ? { insecure: options.insecure } : {}),
    ...(options.userAgent ? { userAgent: options.userAgent } : {}),
    ...(options.retry ? { retry: options.retry } : {}),
  });
  try {
    const c = await client.connection(host, options.signal);
    const res = await c.transport({ method: "GET", url: new URL("/v2/", c.origin), scopes: [], ...(options.signal ? { signal: options.signal } : {}) });
    const body = await readBody(res, 64 << 10);
    if (res.status !== 200) throw registryError(`login to ${host}${credential.username ? ` as ${credential.username}` : ""}`, res.status, parseErrorBody(body));
  } finally {
    await client.close();
  }
}

/**
 * Check `username`/`password` against `host`'s registry, then store them.
 * @throws FailedPreconditionError `ERR_REGISTRY_UNAUTHORIZED` when the registry refuses them
 */
export async function login(host: string, username: string, password: string, options: LoginOptions = {}): Promise<StoredCredential> {
  const credential = { username, password };
  await checkCredential(host, credential, options);
  return storeCredential(host, credential, options);
}

/** Forget `host`'s credential (config.json and helper). False when there was none. */
export function logout(host: string, options: DockerConfigOptions = {}): Promise<boolean> {
  return eraseCredential(host, options);
}
