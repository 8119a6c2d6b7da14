#!/usr/bin/env node
/**
 * `node tools/peers/dist/cli.js start|stop|status|env` — run the shared test
 * dockerd by hand. `start` prints `export DOCKER_HOST=...` for `eval "$(...)"`.
 */
import { dockerdPaths, dockerdStatus, startDockerd, stopDockerd } from "./dockerd.js";

const USAGE = `usage: berth-peers <command>
  start    start (or reuse) the shared dockerd; prints export DOCKER_HOST=...
  stop     stop the shared dockerd and berth's own containerd
  status   say whether it runs (exit 0 when running, 3 when not)
  env      print export DOCKER_HOST=... (does not start anything)`;

async function main(argv: string[]): Promise<number> {
  const cmd = argv[0];
  const p = dockerdPaths();
  switch (cmd) {
    case "start": {
      const peer = await startDockerd();
      console.error(`dockerd ready on ${peer.host} (log ${peer.logFile}); client ${peer.dockerPath}`);
      console.log(`export DOCKER_HOST=${peer.host}`);
      return 0;
    }
    case "stop": {
      const s = await stopDockerd();
      console.log(
        s.dockerd || s.containerd
          ? `stopped${s.dockerd ? ` dockerd (pid ${s.dockerd})` : ""}${s.containerd ? ` containerd (pid ${s.containerd})` : ""}`
          : "not running",
      );
      return 0;
    }
    case "status": {
      const s = await dockerdStatus();
      console.log(
        `dockerd: ${s.running ? "running" : "not running"}${s.pid ? ` (pid ${s.pid})` : ""} on ${s.host}\n` +
          `containerd (berth's own): ${s.containerdPid ? `pid ${s.containerdPid}` : "not running"}\n` +
          `log: ${s.logFile}`,
      );
      return s.running ? 0 : 3;
    }
    case "env":
      console.log(`export DOCKER_HOST=${p.host}`);
      return 0;
    default:
      console.error(USAGE);
      return cmd === "help" || cmd === "--help" || cmd === "-h" ? 0 : 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`berth-peers: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  },
);
