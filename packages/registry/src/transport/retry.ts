/**
 * The retry layer (go-containerregistry `retry.go`): a request that failed on
 * the way (connection reset, timeout) or was answered 408, 429, 500, 502,
 * 503 or 504 is sent again after a backoff, when that is safe:
 *
 * - its body can be resent ({@link isReplayable}), and
 * - it is not a `PATCH` (a chunk the registry may have half-taken: the upload
 *   code asks the session where it stands instead).
 *
 * Backoff is exponential with full jitter, capped; `Retry-After` (seconds) is
 * honoured up to the cap. The last response is returned as it is, for the
 * caller to turn into an error.
 * @module
 */
import { abortedError } from "../errors.js";
import { isTransientNetworkError } from "./http.js";
import { discard, header, isReplayable, type RegistryRequest, type Transport } from "./types.js";

/** Options of {@link withRetry}. */
export interface RetryOptions {
  /** Retries after the first attempt. Default 4. */
  retries?: number;
  /** First backoff. Default 200 ms. */
  baseDelayMs?: number;
  /** Longest single wait. Default 10 s. */
  maxDelayMs?: number;
  /** Statuses worth a retry. Default 408, 429, 500, 502, 503, 504. */
  statuses?: readonly number[];
  /** Called before each retry (logging, tests). */
  onRetry?(info: { attempt: number; delayMs: number; status?: number; error?: unknown; request: RegistryRequest }): void;
}

/** Statuses retried by default. */
export const RETRY_STATUSES: readonly number[] = [408, 429, 500, 502, 503, 504];

/** True when the request may be sent again. */
export function isSafeToRetry(req: RegistryRequest): boolean {
  return req.method !== "PATCH" && isReplayable(req.body);
}

/** Waits `ms`, or rejects when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError("wait", signal.reason));
    const onAbort = () => {
      clearTimeout(t);
      reject(abortedError("wait", signal?.reason));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function retryAfterMs(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const s = Number(value);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

/** Wraps `next` with retries of what is safe to retry. */
export function withRetry(next: Transport, options: RetryOptions = {}): Transport {
  const retries = options.retries ?? 4;
  const base = options.baseDelayMs ?? 200;
  const cap = options.maxDelayMs ?? 10_000;
  const statuses = new Set(options.statuses ?? RETRY_STATUSES);
  return async (req) => {
    const safe = isSafeToRetry(req);
    for (let attempt = 0; ; attempt++) {
      const backoff = () => Math.round(Math.random() * Math.min(cap, base * 2 ** attempt));
      let res: Awaited<ReturnType<Transport>>;
      try {
        res = await next(req);
      } catch (error) {
        if (!safe || attempt >= retries || !isTransientNetworkError(error) || req.signal?.aborted) throw error;
        const delayMs = backoff();
        options.onRetry?.({ attempt: attempt + 1, delayMs, error, request: req });
        await sleep(delayMs, req.signal);
        continue;
      }
      if (!safe || attempt >= retries || !statuses.has(res.status)) return res;
      const delayMs = Math.min(cap, retryAfterMs(header(res, "retry-after")) ?? backoff());
      await discard(res);
      options.onRetry?.({ attempt: attempt + 1, delayMs, status: res.status, request: req });
      await sleep(delayMs, req.signal);
    }
  };
}
