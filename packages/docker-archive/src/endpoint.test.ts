/**
 * Endpoint resolution against the docker CLI itself: contexts are made with
 * `docker context create` / `docker context use` in a temp DOCKER_CONFIG, and
 * for each environment berth's answer is compared with `docker context
 * inspect` (host, SkipTLSVerify, which TLS files). Needs a docker CLI with
 * contexts (19.03+; /usr/local/bin/docker here); skips without one.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeCerts } from "../test/tls-certs.js";
import { parseDockerHost, resolveDockerEndpoint } from "./endpoint.js";

const docker = ["/usr/local/bin/docker", "/usr/bin/docker"].find((p) => existsSync(p));
if (!docker && process.env.BERTH_REQUIRE_PEERS === "1") throw new Error("the docker CLI is missing (BERTH_REQUIRE_PEERS=1)");
const dir = mkdtempSync(join(tmpdir(), "berth-endpoint-"));
const config = join(dir, "config");
const certs = join(dir, "certs");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Environment with nothing of the caller's docker settings. */
function envOf(vars: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: dir, DOCKER_CONFIG: config, ...vars };
}

function cli(args: string[], vars: Record<string, string> = {}): string {
  return execFileSync(docker!, args, { env: envOf(vars), encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

interface Inspected {
  Name: string;
  Endpoints: { docker: { Host: string; SkipTLSVerify: boolean } };
  TLSMaterial: { docker?: string[] };
}

function inspect(vars: Record<string, string>): Inspected {
  return JSON.parse(cli(["context", "inspect", "--format", "{{json .}}"], vars)) as Inspected;
}

describe("parseDockerHost", () => {
  it.each([
    ["", false, "unix:///var/run/docker.sock"],
    ["", true, "tcp://localhost:2376"],
    ["unix://", false, "unix:///var/run/docker.sock"],
    ["unix:///tmp/d.sock", false, "unix:///tmp/d.sock"],
    ["1.2.3.4", false, "tcp://1.2.3.4:2375"],
    ["tcp://h", true, "tcp://h:2375"],
    ["tcp://:2376/base/", false, "tcp://localhost:2376/base/"],
    ["[::1]:5", false, "tcp://[::1]:5"],
    ["http://127.0.0.1:80", false, "tcp://127.0.0.1:80"],
    ["ssh://me@h:2222", false, "ssh://me@h:2222"],
  ])("%j (tls %s) → %s", (value, tls, want) => {
    expect(parseDockerHost(value, tls)).toBe(want);
  });

  it.each(["foo://x", "tcp://h:x", "tcp://h:99999"])("%j: ERR_INVALID_DOCKER_HOST", (value) => {
    expect(() => parseDockerHost(value)).toThrow(expect.objectContaining({ code: "ERR_INVALID_DOCKER_HOST" }));
  });
});

describe.skipIf(!docker)("resolveDockerEndpoint = the docker CLI's endpoint", () => {
  beforeAll(() => {
    mkdirSync(certs, { recursive: true });
    mkdirSync(config, { recursive: true });
    makeCerts(certs);
    cli(["context", "create", "tlsctx", "--docker", `host=tcp://127.0.0.1:23760,ca=${certs}/ca.pem,cert=${certs}/cert.pem,key=${certs}/key.pem`]);
    cli(["context", "create", "skipctx", "--docker", "host=tcp://10.9.8.7:2376,skip-tls-verify=true"]);
    cli(["context", "create", "plainctx", "--docker", "host=tcp://10.9.8.7"]);
    cli(["context", "create", "sshctx", "--docker", "host=ssh://me@build-host:2222"]);
  });

  const cases: Array<[string, Record<string, string>]> = [
    ["nothing set", {}],
    ["DOCKER_HOST without a scheme", { DOCKER_HOST: "1.2.3.4" }],
    ["DOCKER_HOST unix://", { DOCKER_HOST: "unix://" }],
    ["DOCKER_TLS_VERIFY without DOCKER_HOST", { DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: certs }],
    ["DOCKER_TLS_VERIFY=0 (still on, as in the CLI)", { DOCKER_TLS_VERIFY: "0", DOCKER_CERT_PATH: certs, DOCKER_HOST: "tcp://127.0.0.1:2376" }],
    ["DOCKER_CONTEXT with TLS material", { DOCKER_CONTEXT: "tlsctx" }],
    ["DOCKER_CONTEXT with SkipTLSVerify", { DOCKER_CONTEXT: "skipctx" }],
    ["DOCKER_CONTEXT without TLS", { DOCKER_CONTEXT: "plainctx" }],
    ["DOCKER_CONTEXT ssh://", { DOCKER_CONTEXT: "sshctx" }],
    ["DOCKER_CONTEXT=default", { DOCKER_CONTEXT: "default", DOCKER_HOST: "" }],
    ["DOCKER_HOST wins over DOCKER_CONTEXT", { DOCKER_CONTEXT: "tlsctx", DOCKER_HOST: "tcp://5.6.7.8:1234" }],
    ["TLS variables do not apply to a named context", { DOCKER_CONTEXT: "plainctx", DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: certs }],
  ];

  it.each(cases)("%s", (_what, vars) => {
    const want = inspect(vars);
    const got = resolveDockerEndpoint({ env: envOf(vars) });
    expect(got.context).toBe(want.Name);
    expect(got.host).toBe(parseDockerHost(want.Endpoints.docker.Host));
    if (want.Name === "default") {
      // the CLI reports the default context's TLS by the variables, not in TLSMaterial
      const on = (vars.DOCKER_TLS_VERIFY ?? "") !== "";
      expect(got.tls !== undefined).toBe(on);
      if (on) expect(got.tls).toMatchObject({ verify: true, ca: readFileSync(join(certs, "ca.pem")), cert: readFileSync(join(certs, "cert.pem")) });
    } else {
      const files = want.TLSMaterial.docker ?? [];
      expect(got.tls?.verify ?? true).toBe(!want.Endpoints.docker.SkipTLSVerify);
      expect(got.tls?.ca !== undefined).toBe(files.includes("ca.pem"));
      expect(got.tls?.cert !== undefined).toBe(files.includes("cert.pem"));
      if (files.includes("ca.pem")) expect(got.tls!.ca).toEqual(readFileSync(join(certs, "ca.pem")));
    }
  });

  it("`docker context use` (currentContext in config.json) is followed, and DOCKER_HOST still wins", () => {
    cli(["context", "use", "skipctx"]);
    try {
      expect(inspect({}).Name).toBe("skipctx");
      expect(resolveDockerEndpoint({ env: envOf({}) })).toMatchObject({ context: "skipctx", host: "tcp://10.9.8.7:2376", tls: { verify: false } });
      expect(resolveDockerEndpoint({ env: envOf({ DOCKER_HOST: "unix:///x.sock" }) })).toEqual({ context: "default", host: "unix:///x.sock" });
      // an explicit host (the CLI's -H) wins as well
      expect(resolveDockerEndpoint({ env: envOf({}), host: "tcp://1.1.1.1:1" })).toEqual({ context: "default", host: "tcp://1.1.1.1:1" });
    } finally {
      cli(["context", "use", "default"]);
    }
  });

  it("a context that does not exist: ERR_DOCKER_CONTEXT_NOT_FOUND (the CLI fails too)", () => {
    expect(() => inspect({ DOCKER_CONTEXT: "nope" })).toThrow();
    expect(() => resolveDockerEndpoint({ env: envOf({ DOCKER_CONTEXT: "nope" }) })).toThrow(
      expect.objectContaining({ code: "ERR_DOCKER_CONTEXT_NOT_FOUND" }),
    );
  });

  it("TLS on but no ca.pem in DOCKER_CERT_PATH: ERR_DOCKER_TLS (the CLI fails too)", () => {
    const vars = { DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: join(dir, "empty") };
    expect(() => cli(["version"], vars)).toThrow(/ca\.pem/);
    expect(() => resolveDockerEndpoint({ env: envOf(vars) })).toThrow(expect.objectContaining({ code: "ERR_DOCKER_TLS" }));
  });

  it("a config.json that is not JSON: ERR_DOCKER_CONFIG", () => {
    const bad = join(dir, "badconfig");
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, "config.json"), "{not json");
    expect(() => resolveDockerEndpoint({ env: { HOME: dir, DOCKER_CONFIG: bad } })).toThrow(expect.objectContaining({ code: "ERR_DOCKER_CONFIG" }));
  });
});
