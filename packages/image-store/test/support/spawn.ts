import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const register = fileURLToPath(new URL("./register.mjs", import.meta.url));
const worker = fileURLToPath(new URL("./worker.ts", import.meta.url));

/** Start a worker child process (see worker.ts). */
export function startWorker(args: { root: string; mode: "overlap" | "crash"; seed: number; count: number; log: string }): {
  child: ChildProcess;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
} {
  const child = spawn(
    process.execPath,
    ["--import", register, worker, args.root, args.mode, String(args.seed), String(args.count), args.log],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.on("exit", (code, signal) => resolve({ code, signal, stderr }));
  });
  return { child, exit };
}
