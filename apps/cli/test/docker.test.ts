/**
 * `berth docker push/pull` when the daemon cannot be used (no peers needed):
 * what the store can answer comes first, and each way of not reaching the
 * daemon has its own message and exit code.
 */
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { berth, tempDir } from "./helpers.js";

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
