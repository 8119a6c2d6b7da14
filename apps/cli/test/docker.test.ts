/**
 * `berth docker push/pull` when the daemon cannot be used (no peers needed):
 * what the store can answer comes first, and each way of not reaching the
 * daemon has its own message and exit code.
 */
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { berth, berthOk, makeAppDir, tempDir } from "./helpers.js";

const tmp = tempDir("berth-cli-docker-");
afterAll(tmp.cleanup);

/** Environment with none of the caller's docker settings. */
function env(vars: Record<string, string>): NodeJS.ProcessEnv {
  return { DOCKER_HOST: "", DOCKER_CONTEXT: "", DOCKER_TLS_VERIFY: "", DOCKER_TLS: "", DOCKER_CERT_PATH: "", DOCKER_CONFIG: join(tmp.dir, "config"), ...vars };
}
const root = join(tmp.dir, "store");
const down = `unix://${join(tmp.dir, "no.sock")}`;

function berthLine(stderr: string): string {
  const lines = stderr.split("\n").filter((l) => l.startsWith("berth: "));
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe("berth docker with no usable daemon", () => {
  it("push of an image the store lacks: not found (3), whatever the daemon's state", async () => {
    const cases: Array<Record<string, string>> = [{ DOCKER_HOST: down }, { DOCKER_HOST: "ssh://me@build-host" }, { DOCKER_CONTEXT: "nope" }];
    for (const vars of cases) {
      const r = await berth(["docker", "push", "berth-cli-test/nope:1"], { root, env: env(vars) });
      expect(r.code, r.stderr).toBe(3);
      expect(berthLine(r.stderr)).toContain("no such image");
    }
  });

  it("ssh:// is refused with a way around it", async () => {
    const r = await berth(["docker", "pull", "busybox:latest"], { root, env: env({ DOCKER_HOST: "ssh://me@build-host" }) });
    expect(r.code).toBe(5);
    expect(berthLine(r.stderr)).toMatch(/ssh:\/\/ is not supported yet.*ssh -nNT -L/);
  });

  it("a docker context that does not exist: not found (3), naming it", async () => {
    const r = await berth(["docker", "pull", "busybox:latest"], { root, env: env({ DOCKER_CONTEXT: "nope" }) });
    expect(r.code).toBe(3);
    expect(berthLine(r.stderr)).toContain('docker context "nope" not found');
  });

  it("DOCKER_TLS_VERIFY without a ca.pem: I/O error (6) naming the file", async () => {
    const r = await berth(["docker", "pull", "busybox:latest"], { root, env: env({ DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: join(tmp.dir, "certs") }) });
    expect(r.code).toBe(6);
    expect(berthLine(r.stderr)).toContain(join(tmp.dir, "certs", "ca.pem"));
  });

  it("help lists the docker CLI's variables", async () => {
    const r = await berth(["docker", "--help"]);
    for (const v of ["DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"]) expect(r.stdout).toContain(v);
  });
});

describe("berth docker push to a berth server", () => {
  it("asks which layers the server has and sends only the others (negotiated incremental load)", async () => {
    const { serveStore } = await import("@berth/server");
    const served = await serveStore({ root: join(tmp.dir, "served"), port: 0, socketPath: join(tmp.dir, "served.sock"), log: { format: "none" }, sweepIntervalMs: 0 });
    try {
      const big = new Uint8Array(1 << 20).map((_, i) => (i * 2654435761) >>> 24);
      const local = join(tmp.dir, "push-store");
      await berthOk(["import", makeAppDir(join(tmp.dir, "base-dir"), { "base.bin": big }), "-t", "base:1"], { root: local });
      const id = (await berthOk(["import", makeAppDir(join(tmp.dir, "app-dir"), { "app.txt": "app\n" }), "--base", "base:1", "-t", "app:1"], { root: local })).stdout.trim();
      const push = async (ref: string) => {
        const r = await berthOk(["docker", "push", "--progress=json", ref], { root: local, env: env({ DOCKER_HOST: `unix://${served.socketPath}` }) });
        return r.stderr.trim().split("\n").map((l) => JSON.parse(l)).find((e) => e.event === "summary");
      };
      expect(await push("base:1")).toMatchObject({ negotiated: true, layersSkipped: 0, layersSent: 1 });
      const app = await push("app:1");
      expect(app).toMatchObject({ negotiated: true, layersSkipped: 1, layersSent: 1, fellBack: false });
      expect(app.bytesSent).toBeLessThan(64 * 1024);
      expect((await served.service.inspect("app:1")).id).toBe(id);
    } finally {
      await served.close();
    }
  });
});
