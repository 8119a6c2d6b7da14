/**
 * Byte streams that keep their own timing, as callers' streams do, for tests
 * that an API which accepts a stream reads every byte of it: a child process
 * that has already exited, and a TCP socket whose peer has already sent
 * everything. Node only (child processes, sockets, `/proc`).
 * @module
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, connect, type Socket } from "node:net";
import type { Readable } from "node:stream";

/**
 * Spawn `command` and wait, blocking this thread, until it has exited: its
 * stdout then holds everything it wrote, and Node learns of the exit on the
 * next turn of the event loop — before an API that awaits anything first
 * reads a byte. Its output must fit in a pipe (64 KiB on Linux), or it never
 * exits. Linux (`/proc`).
 */
export function exitedChildStdout(command: string, args: readonly string[], timeoutMs = 20_000): Readable {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
  if (child.pid === undefined) throw new Error(`could not spawn ${command}`);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + timeoutMs;
  // a zombie: exited, not yet reaped (Node reaps it in the event loop)
  while (readFileSync(`/proc/${child.pid}/stat`, "latin1").replace(/^.*\) /s, "")[0] !== "Z") {
    if (Date.now() > deadline) throw new Error(`${command} did not exit within ${timeoutMs} ms`);
    Atomics.wait(pause, 0, 0, 2);
  }
  return child.stdout;
}

/**
 * A client socket to a server on 127.0.0.1 that writes `bytes` and ends the
 * connection; resolves once the server has sent it all (and a moment later,
 * so that it has arrived), nothing of it read yet.
 */
export async function socketStream(bytes: Uint8Array): Promise<Socket> {
  let sent!: () => void;
  const done = new Promise<void>((resolve) => (sent = resolve));
  const server = createServer((peer) => {
    server.close();
    peer.end(bytes, sent);
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const client = connect(port, "127.0.0.1");
  await done;
  await new Promise((resolve) => setTimeout(resolve, 20));
  return client;
}
