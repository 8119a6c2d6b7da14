/**
 * Ctrl-C and SIGTERM for long commands (load, save): {@link interruptible}.
 * @module
 */
import { InterruptedError } from "./exit.js";

/**
 * Run `fn` so that Ctrl-C (SIGINT) or SIGTERM aborts it cleanly: `abort` is
 * called with an {@link InterruptedError} (it should make `fn` fail, e.g. by
 * destroying its streams), `fn`'s own cleanup runs, and the error reaches
 * main, which exits 130. A signal that comes when `fn` can no longer undo its
 * work (it resolved) fails with what `kept` says stays, or, without `kept`,
 * "nothing was kept" (the caller removes what `fn` made). A second signal, or
 * `fn` not settling within 10 s, exits at once.
 */
export async function interruptible<T>(fn: () => Promise<T>, abort: (err: InterruptedError) => void, kept?: (r: T) => string): Promise<T> {
  let signal: NodeJS.Signals | undefined;
  let fallback: NodeJS.Timeout | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signal) process.exit(130);
    signal = sig;
    fallback = setTimeout(() => process.exit(130), 10_000).unref();
    abort(new InterruptedError(sig));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const r = await fn();
    if (signal) throw new InterruptedError(signal, kept?.(r));
    return r;
  } catch (err) {
    throw signal && !(err instanceof InterruptedError) ? new InterruptedError(signal) : err;
  } finally {
    clearTimeout(fallback);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
