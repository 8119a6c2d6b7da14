import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

/** Spawn a TypeScript worker under test/workers with the TS hooks. */
export function spawnWorker(name: string, args: string[]): ChildProcess {
  return spawn(
    process.execPath,
    ["--conditions=source", "--import", path.join(here, "register-ts.mjs"), path.join(here, "workers", name), ...args],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
}

/** Collect a child's stdout lines and stderr; resolves when it exits. */
export function watch(child: ChildProcess): {
  lines: string[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(line: string, timeoutMs?: number): Promise<void>;
} {
  const lines: string[] = [];
  let buf = "";
  let err = "";
  const waiters: Array<{ line: string; resolve: () => void }> = [];
  child.stdout!.on("data", (c: Buffer) => {
    buf += c.toString();
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      for (const w of waiters.filter((w) => w.line === line)) w.resolve();
    }
  });
  child.stderr!.on("data", (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    lines,
    stderr: () => err,
    exited,
    waitFor(line, timeoutMs = 30_000) {
      if (lines.includes(line)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${JSON.stringify(line)}; stderr: ${err}`)), timeoutMs);
        waiters.push({
          line,
          resolve: () => {
            clearTimeout(t);
            resolve();
          },
        });
        exited.then(() => {
          clearTimeout(t);
          if (!lines.includes(line)) reject(new Error(`worker exited before ${JSON.stringify(line)}; stderr: ${err}`));
        });
      });
    },
  };
}
