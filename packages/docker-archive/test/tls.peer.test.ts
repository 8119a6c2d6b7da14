/**
 * TLS against a real dockerd: a CA, server and client certificates made with
 * openssl, and a second dockerd (its own data/exec root, on the shared
 * peer's containerd) listening with `--tlsverify` on 127.0.0.1. berth's
 * client reaches it from `DOCKER_HOST` + `DOCKER_TLS_VERIFY` +
 * `DOCKER_CERT_PATH` and from a context made with `docker context create`,
 * the docker CLI agreeing; a wrong CA or no client certificate is
 * ERR_DOCKER_TLS. Needs root (to start dockerd); skips otherwise, fails under
 * BERTH_REQUIRE_PEERS=1.
 */
import { spawn } from "node:child_process";
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { dockerd, dockerdPaths, exec, freePort, peersRequired } from "@berth/peers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerClient, load, loadIntoDaemon } from "../src/index.js";
import { imageOf, layerTar, legacyEntries, tarOf, tempStore } from "./helpers.js";
import { makeCerts } from "./tls-certs.js";

const peer = await dockerd();
const root = process.getuid?.() === 0;
if (!root && process.env.BERTH_REQUIRE_PEERS === "1") throw new Error("a second dockerd needs root (BERTH_REQUIRE_PEERS=1)");
if (peer && !root && peersRequired()) throw new Error("the TLS dockerd test needs root");
const cliPath = ["/usr/local/bin/docker", "/usr/bin/docker"].find((p) => existsSync(p));
if (!cliPath && process.env.BERTH_REQUIRE_PEERS === "1") throw new Error("the docker CLI is missing (BERTH_REQUIRE_PEERS=1)");

// short path: dockerd's exec-root holds unix sockets (108-byte limit)
const dir = mkdtempSync("/tmp/berth-tls-");
const certs = join(dir, "certs");
let port = 0;
let pid = 0;

/** Start dockerd with --tlsverify on 127.0.0.1:port and wait until the docker CLI reaches it over TLS. */
async function startTlsDockerd(): Promise<void> {
  mkdirSync(certs);
  makeCerts(certs);
  port = await freePort();
  const p = dockerdPaths();
  const containerd = existsSync(p.containerdSocket) ? p.containerdSocket : "/run/containerd/containerd.sock";
  const log = openSync(join(dir, "dockerd.log"), "a");
  const child = spawn(
    "/usr/sbin/dockerd",
    [
      ...["--data-root", join(dir, "root"), "--exec-root", join(dir, "exec"), "--pidfile", join(dir, "dockerd.pid")],
      ...["-H", `tcp://127.0.0.1:${port}`, "--tlsverify"],
      ...["--tlscacert", join(certs, "ca.pem"), "--tlscert", join(certs, "server-cert.pem"), "--tlskey", join(certs, "server-key.pem")],
      ...["--storage-driver", "vfs", "--iptables=false", "--ip6tables=false", "--bridge=none"],
      ...["--containerd", containerd, "--containerd-namespace", "berth-tls-test", "--containerd-plugins-namespace", "berth-tls-plugins"],
    ],
    { stdio: ["ignore", log, log] },
  );
  closeSync(log);
  pid = child.pid!;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const r = await exec(cliPath!, ["version", "--format", "{{.Server.Version}}"], { env: tlsEnv(), timeoutMs: 10_000 });
    if (r.code === 0) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`TLS dockerd did not come up:\n${readFileSync(join(dir, "dockerd.log"), "utf8").slice(-3000)}`);
}

/** The docker CLI's TLS variables for the test daemon (nothing else of the caller's docker settings). */
function tlsEnv(certPath = certs): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dir,
    DOCKER_CONFIG: join(dir, "config"),
    DOCKER_HOST: `tcp://127.0.0.1:${port}`,
    DOCKER_TLS_VERIFY: "1",
    DOCKER_CERT_PATH: certPath,
  };
}

describe.skipIf(!peer || !root || !cliPath)("TLS to a real dockerd (--tlsverify)", () => {
  beforeAll(startTlsDockerd, 90_000);
  afterAll(async () => {
    if (pid) {
      process.kill(pid, "SIGTERM");
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("DOCKER_HOST + DOCKER_TLS_VERIFY + DOCKER_CERT_PATH: ping, and a load the daemon then has", async () => {
    const client = new DockerClient({ env: tlsEnv() });
    expect(client.endpoint.tls).toMatchObject({ verify: true, source: certs });
    await expect(client.ping()).resolves.toBe(true);

    const t = await tempStore();
    try {
      const img = imageOf([await layerTar({ "hello.txt": `tls ${randomBytes(8).toString("hex")}\n` })]);
      const tag = "berth-tls-test/hello:1";
      await load(t.store, [await tarOf(legacyEntries([{ img, tags: [tag] }]))]);
      const r = await loadIntoDaemon(t.store, tag, { client, incremental: true });
      expect(r.messages.join("\n")).toContain(`Loaded image: ${tag}`);
      await expect(client.hasImage(tag)).resolves.toBe(true);
      const cli = await exec(cliPath!, ["image", "inspect", "--format", "{{.Id}}", tag], { env: tlsEnv() });
      expect(cli.stdout.trim()).toBe(img.id);
    } finally {
      await t.cleanup();
    }
  });

  it("a context made with `docker context create` reaches the same daemon", async () => {
    const env = { ...tlsEnv(), DOCKER_HOST: "", DOCKER_TLS_VERIFY: "", DOCKER_CERT_PATH: "" };
    const c = certs;
    const made = await exec(
      cliPath!,
      ["context", "create", "tlsd", "--docker", `host=tcp://127.0.0.1:${port},ca=${c}/ca.pem,cert=${c}/cert.pem,key=${c}/key.pem`],
      { env },
    );
    expect(made.code, made.output).toBe(0);
    const ctxEnv = { ...env, DOCKER_CONTEXT: "tlsd" };
    expect((await exec(cliPath!, ["version", "--format", "{{.Server.Version}}"], { env: ctxEnv })).code).toBe(0);
    const client = new DockerClient({ env: ctxEnv });
    expect(client.endpoint).toMatchObject({ context: "tlsd", host: `tcp://127.0.0.1:${port}` });
    await expect(client.ping()).resolves.toBe(true);
  });

  it("a CA that did not sign the daemon's certificate: ERR_DOCKER_TLS", async () => {
    const other = join(dir, "other-ca");
    mkdirSync(other);
    makeCerts(other);
    const client = new DockerClient({ env: tlsEnv(other) });
    await expect(client.ping()).rejects.toMatchObject({ code: "ERR_DOCKER_TLS", name: "DockerTlsError" });
    await expect(client.json("/version")).rejects.toMatchObject({ code: "ERR_DOCKER_TLS" });
  });

  it("no client certificate (only ca.pem in DOCKER_CERT_PATH): ERR_DOCKER_TLS that says so", async () => {
    const caOnly = join(dir, "ca-only");
    mkdirSync(caOnly);
    copyFileSync(join(certs, "ca.pem"), join(caOnly, "ca.pem"));
    const client = new DockerClient({ env: tlsEnv(caOnly) });
    expect(client.endpoint.tls?.cert).toBeUndefined();
    const err = await client.ping().then(
      () => undefined,
      (e: unknown) => e as Error & { code: string },
    );
    expect(err?.code).toBe("ERR_DOCKER_TLS");
    expect(err?.message).toContain("no client certificate");
  });
});
