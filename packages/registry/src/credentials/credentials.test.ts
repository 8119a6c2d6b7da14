import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { installHelper } from "../../test/credential-helper.js";
import {
  configKey,
  credentialFromConfig,
  dockerConfigFile,
  dockerCredentials,
  eraseCredential,
  hostOfKey,
  readDockerConfig,
  storeCredential,
} from "./dockerconfig.js";
import { runCredentialHelper } from "./helper.js";

const root = await mkdtemp(path.join(tmpdir(), "berth-creds-"));
afterAll(() => rm(root, { recursive: true, force: true }));
let n = 0;
async function configDir(config?: unknown): Promise<string> {
  const dir = path.join(root, `c${n++}`);
  if (config !== undefined) {
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "config.json"), typeof config === "string" ? config : JSON.stringify(config));
  }
  return dir;
}
const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("config.json keys", () => {
  it("match hosts the way docker's ConvertToHostname does", () => {
    expect(hostOfKey("https://127.0.0.1:5000/v1/")).toBe("127.0.0.1:5000");
    expect(hostOfKey("http://reg.example")).toBe("reg.example");
    expect(hostOfKey("https://index.docker.io/v1/")).toBe("docker.io");
    expect(configKey("docker.io")).toBe("https://index.docker.io/v1/");
    expect(configKey("127.0.0.1:5000")).toBe("127.0.0.1:5000");
  });
  it("uses $DOCKER_CONFIG, else ~/.docker", () => {
    expect(dockerConfigFile({ env: { DOCKER_CONFIG: "/x" } })).toBe("/x/config.json");
    expect(dockerConfigFile({ env: { HOME: "/home/u" } })).toBe("/home/u/.docker/config.json");
  });
});

describe("reading credentials", () => {
  it("decodes auth, prefers identitytoken, reads registrytoken, and matches keys with scheme and path", async () => {
    const dir = await configDir({
      auths: {
        "https://reg.example/v1/": { auth: b64("alice:pa:ss") },
        "tok.example": { auth: b64("bob:pw"), identitytoken: "refresh-1" },
        "rt.example": { registrytoken: "bearer-1" },
        "https://index.docker.io/v1/": { auth: b64("hub:pw") },
      },
      unrelated: { kept: true },
    });
    const get = dockerCredentials({ configDir: dir });
    expect(await get("reg.example")).toEqual({ username: "alice", password: "pa:ss" });
    expect(await get("tok.example")).toEqual({ identityToken: "refresh-1" });
    expect(await get("rt.example")).toEqual({ registryToken: "bearer-1" });
    expect(await get("docker.io")).toEqual({ username: "hub", password: "pw" });
    expect(await get("other.example")).toBeUndefined();
  });
  it("treats a missing file as empty and refuses a broken one with ERR_DOCKER_CONFIG", async () => {
    expect(await readDockerConfig({ configDir: path.join(root, "none") })).toEqual({});
    const bad = await configDir("{not json");
    await expect(readDockerConfig({ configDir: bad })).rejects.toMatchObject({ code: "ERR_DOCKER_CONFIG" });
    const badAuth = await configDir({ auths: { "r.example": { auth: b64("nocolon") } } });
    await expect(dockerCredentials({ configDir: badAuth })("r.example")).rejects.toMatchObject({ code: "ERR_DOCKER_CONFIG" });
  });
});

describe("credential helpers", () => {
  it("credHelpers wins over credsStore, which wins over auths; <token> usernames are identity tokens", async () => {
    const bin = path.join(root, "bin");
    const PATH = await installHelper(bin, "berthtest");
    await installHelper(path.join(root, "bin2"), "other");
    const env = { ...process.env, PATH: `${path.join(root, "bin2")}:${PATH}` };
    await runCredentialHelper("berthtest", "store", JSON.stringify({ ServerURL: "a.example", Username: "ua", Secret: "sa" }), { env });
    await runCredentialHelper("other", "store", JSON.stringify({ ServerURL: "b.example", Username: "<token>", Secret: "idt" }), { env });
    const config = { credsStore: "berthtest", credHelpers: { "b.example": "other" }, auths: { "a.example": { auth: b64("file:pw") } } };
    expect(await credentialFromConfig(config, "a.example", { env })).toEqual({ username: "ua", password: "sa" });
    expect(await credentialFromConfig(config, "b.example", { env })).toEqual({ identityToken: "idt" });
    expect(await credentialFromConfig(config, "c.example", { env })).toBeUndefined();
  });
  it("reports a missing or failing helper with ERR_CREDENTIAL_HELPER", async () => {
    await expect(credentialFromConfig({ credsStore: "does-not-exist-anywhere" }, "x.example")).rejects.toMatchObject({ code: "ERR_CREDENTIAL_HELPER" });
    await expect(runCredentialHelper("bad/name", "get", "x")).rejects.toMatchObject({ code: "ERR_CREDENTIAL_HELPER" });
  });
});

describe("storing and erasing", () => {
  it("writes auths as docker login does, keeping other fields, mode 0600, and erases them", async () => {
    const dir = await configDir({ auths: { "https://reg.example/v1/": { auth: b64("old:pw") } }, psFormat: "table" });
    const stored = await storeCredential("reg.example", { username: "new", password: "secret" }, { configDir: dir });
    expect(stored.helper).toBeUndefined();
    const written = JSON.parse(await readFile(stored.configFile, "utf8"));
    expect(written).toEqual({ auths: { "reg.example": { auth: b64("new:secret") } }, psFormat: "table" });
    expect((await stat(stored.configFile)).mode & 0o777).toBe(0o600);
    expect(await eraseCredential("reg.example", { configDir: dir })).toBe(true);
    expect(JSON.parse(await readFile(stored.configFile, "utf8"))).toEqual({ auths: {}, psFormat: "table" });
    expect(await eraseCredential("reg.example", { configDir: dir })).toBe(false);
  });
  it("stores into the helper config.json names, leaving an empty auths entry", async () => {
    const bin = path.join(root, "bin3");
    const env = { ...process.env, PATH: await installHelper(bin, "berthstore") };
    const dir = await configDir({ credsStore: "berthstore" });
    const stored = await storeCredential("h.example:5000", { username: "u", password: "p" }, { configDir: dir, env });
    expect(stored.helper).toBe("berthstore");
    expect(JSON.parse(await readFile(stored.configFile, "utf8")).auths).toEqual({ "h.example:5000": {} });
    expect(await dockerCredentials({ configDir: dir, env })("h.example:5000")).toEqual({ username: "u", password: "p" });
    await eraseCredential("h.example:5000", { configDir: dir, env });
    expect(await dockerCredentials({ configDir: dir, env })("h.example:5000")).toBeUndefined();
  });
});
