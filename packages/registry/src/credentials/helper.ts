/**
 * Docker credential helpers (`docker-credential-<name>`, the
 * docker-credential-helpers protocol): the action is the only argument, the
 * input comes on stdin (a server URL for `get` and `erase`, a JSON
 * `{ServerURL, Username, Secret}` for `store`), `get` answers that JSON on
 * stdout. A helper that does not know the server exits non-zero saying
 * "credentials not found in native keychain".
 * @module
 */
import { spawn } from "node:child_process";
import { FailedPreconditionError } from "@berth/digest";
import { REGISTRY_ERROR_CODES } from "../errors.js";

/** What a helper stores for a server. */
export interface HelperCredential {
  ServerURL?: string;
  /** `<token>` when `Secret` is an identity token. */
  Username: string;
  Secret: string;
}

/** Options of {@link runCredentialHelper}. */
export interface HelperOptions {
  env?: NodeJS.ProcessEnv;
  /** Default 30 s. */
  timeoutMs?: number;
}

function helperError(name: string, message: string, cause?: unknown): FailedPreconditionError {
  return new FailedPreconditionError(`credential helper docker-credential-${name}: ${message}`, {
    code: REGISTRY_ERROR_CODES.CREDENTIAL_HELPER,
    details: { helper: name },
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** True when a helper's output says it has nothing for that server. */
export function isNotFoundOutput(text: string): boolean {
  return /credentials not found/i.test(text);
}

/**
 * Run `docker-credential-<name> <action>` with `input` on stdin; resolves to
 * its stdout, or `undefined` when it says the credentials are not found.
 * @throws FailedPreconditionError `ERR_CREDENTIAL_HELPER` when it is missing, fails or times out
 */
export function runCredentialHelper(name: string, action: "get" | "store" | "erase" | "list", input: string, options: HelperOptions = {}): Promise<string | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return Promise.reject(helperError(name, "invalid helper name"));
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${name}`, [action], { env: options.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(helperError(name, `${action} did not finish in ${options.timeoutMs ?? 30_000} ms`));
    }, options.timeoutMs ?? 30_000);
    child.stdout.on("data", (c: Buffer) => {
      size += c.length;
      if (size > 1 << 20) child.kill("SIGKILL");
      else out.push(c);
    });
    child.stderr.on("data", (c: Buffer) => {
      if (err.length < 64) err.push(c);
    });
    child.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(helperError(name, e.code === "ENOENT" ? "not found on PATH" : e.message, e));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString("utf8");
      if (code === 0) return resolve(stdout);
      const said = `${stdout}\n${Buffer.concat(err).toString("utf8")}`.trim();
      if (action !== "store" && isNotFoundOutput(said)) return resolve(undefined);
      reject(helperError(name, `${action} exited with ${code}: ${said.slice(0, 500)}`));
    });
    child.stdin.on("error", () => {
      /* the helper may exit before reading its input; its exit status tells */
    });
    child.stdin.end(input);
  });
}

/** `get`: the helper's credential for a server URL, or undefined. */
export async function helperGet(name: string, serverUrl: string, options?: HelperOptions): Promise<HelperCredential | undefined> {
  const out = await runCredentialHelper(name, "get", serverUrl, options);
  if (out === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(out);
  } catch (cause) {
    throw helperError(name, "get answered something that is not JSON", cause);
  }
  const c = v as Partial<HelperCredential>;
  if (typeof c?.Username !== "string" || typeof c.Secret !== "string") throw helperError(name, "get answered without Username and Secret");
  return { ServerURL: typeof c.ServerURL === "string" ? c.ServerURL : serverUrl, Username: c.Username, Secret: c.Secret };
}

/** `store` a credential. */
export async function helperStore(name: string, credential: HelperCredential & { ServerURL: string }, options?: HelperOptions): Promise<void> {
  await runCredentialHelper(name, "store", JSON.stringify(credential), options);
}

/** `erase` a server's credential (no error when it had none). */
export async function helperErase(name: string, serverUrl: string, options?: HelperOptions): Promise<void> {
  await runCredentialHelper(name, "erase", serverUrl, options);
}
