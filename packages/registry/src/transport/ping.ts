/**
 * Scheme choice and the `/v2/` ping (go-containerregistry `schemer.go` and
 * `ping.go`).
 *
 * A registry is reached over https with verified TLS, except:
 * - loopback hosts (`localhost`, `*.localhost`, `127.0.0.0/8`, `::1`) are
 *   insecure by default, as docker's `insecure-registries` has `127.0.0.0/8`;
 * - hosts the caller lists as insecure (`--insecure`).
 * For an insecure host the ping tries https without verifying the
 * certificate, then plain http, and remembers what answered. The ping's
 * answer says whether and how to authenticate: 200 (anonymous), or 401 with
 * the challenge.
 * @module
 */
import { abortedError, protocolError, unreachable } from "../errors.js";
import { type Challenge, parseChallenges } from "./challenge.js";
import { discard, headerAll, type Transport } from "./types.js";

/** True for hosts docker treats as insecure without being told: loopback names and addresses. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .replace(/:\d+$/, "")
    .replace(/^\[(.*)\]$/, "$1")
    .toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::1";
}

/** What a ping learned about a registry. */
export interface PingResult {
  /** `https:` or `http:` — what answered. */
  protocol: "https:" | "http:";
  /** Whether TLS certificates are verified (false for an insecure host reached over https). */
  tlsVerify: boolean;
  /** The challenge to answer, or undefined when `/v2/` answered 200 without credentials. */
  challenge: Challenge | undefined;
}

/** How to try a host: a transport per TLS mode, and whether the host is insecure. */
export interface PingOptions {
  host: string;
  insecure: boolean;
  /** The base transport (retry-wrapped) with verified TLS. */
  secure: Transport;
  /** The base transport without TLS verification (used only for insecure hosts). */
  unverified: Transport;
  signal?: AbortSignal;
}

/**
 * Ping `https://host/v2/` (and for insecure hosts, then `http://host/v2/`).
 * @throws UnavailableError `ERR_REGISTRY_UNAVAILABLE` when nothing answers;
 *   FailedPreconditionError `ERR_REGISTRY_PROTOCOL` for an answer that is neither 200 nor 401
 */
export async function ping(options: PingOptions): Promise<PingResult> {
  const attempts: { protocol: "https:" | "http:"; tlsVerify: boolean; transport: Transport }[] = options.insecure
    ? [
        { protocol: "https:", tlsVerify: false, transport: options.unverified },
        { protocol: "http:", tlsVerify: false, transport: options.secure },
      ]
    : [{ protocol: "https:", tlsVerify: true, transport: options.secure }];
  const errors: string[] = [];
  let lastError: unknown;
  let answered = false;
  for (const a of attempts) {
    const url = new URL(`${a.protocol}//${options.host}/v2/`);
    let res: Awaited<ReturnType<Transport>>;
    try {
      res = await a.transport({ method: "GET", url, ...(options.signal ? { signal: options.signal } : {}) });
    } catch (err) {
      if (options.signal?.aborted) throw abortedError(`ping ${options.host}`, options.signal.reason);
      errors.push(`${url.href}: ${(err as Error).message}`);
      lastError = err;
      answered = false;
      continue;
    }
    await discard(res);
    if (res.status === 200) return { protocol: a.protocol, tlsVerify: a.tlsVerify, challenge: undefined };
    if (res.status === 401) {
      const challenges = parseChallenges(headerAll(res, "www-authenticate"));
      const challenge = challenges.find((c) => c.scheme === "bearer") ?? challenges.find((c) => c.scheme === "basic");
      if (!challenge) {
        throw protocolError(`${url.href} answered 401 without a Bearer or Basic challenge`, { details: { challenges } });
      }
      return { protocol: a.protocol, tlsVerify: a.tlsVerify, challenge };
    }
    // A TLS port that is really plain HTTP may answer 400 on the https attempt: try the next.
    errors.push(`${url.href}: HTTP ${res.status}`);
    lastError = protocolError(`${url.href} answered ${res.status} (want 200 or 401)`, { details: { status: res.status } });
    answered = true;
  }
  if (answered) throw lastError;
  throw unreachable(`cannot reach registry ${options.host}: ${errors.join("; ")}`, { cause: lastError });
}
