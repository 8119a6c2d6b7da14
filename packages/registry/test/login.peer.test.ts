/**
 * `docker login` then berth, and berth login then docker, through one
 * config.json — with credentials in the file (htpasswd and token registries,
 * where docker keeps an identity token) and in a credential helper.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { dockerd, type RegistryPeer, registry, tokenIssuer, type TokenIssuer } from "@berth/peers";
import { afterAll, describe, expect, it } from "vitest";
import { RegistryClient } from "../src/client.js";
import { copyImage } from "../src/copy.js";
import { dockerCredentials, readDockerConfig } from "../src/credentials/dockerconfig.js";
import { login, logout } from "../src/credentials/login.js";
import { layoutSource, registryDestination } from "../src/endpoints.js";
import { OciLayout } from "../src/layout.js";
import { installHelper } from "./credential-helper.js";
import { writeTestImage } from "./images.js";

const peer = await dockerd();
const work = await mkdtemp(path.join(tmpdir(), "berth-registry-login-"));
const regs: RegistryPeer[] = [];
let issuer: TokenIssuer | undefined;
afterAll(async () => {
  await Promise.all(regs.map((r) => r.stop()));
  await issuer?.stop();
  await rm(work, { recursive: true, force: true });
});

async function dockerLogin(reg: RegistryPeer, configDir: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const r = await peer!.docker(["login", "-u", reg.user!.username, "--password-stdin", reg.host], { input: reg.user!.password, env: { ...env, DOCKER_CONFIG: configDir } });
  expect(r.output).toContain("Login Succeeded");
}

async function pushWith(client: RegistryClient, reg: RegistryPeer, repo: string): Promise<string> {
  const dir = path.join(work, `img-${repo}-${reg.host.replace(/\W/g, "")}`);
  const image = await writeTestImage(dir, "v1", { layerSizes: [20_000, 30_000] });
  const r = await copyImage(layoutSource(await OciLayout.open(dir), "v1"), registryDestination(client.repository(`${reg.host}/login-test/${repo}`, { push: true })), { tag: "v1" });
  expect(r.digest).toBe(image.digest);
  return image.digest;
}

describe.skipIf(!peer)("docker login and berth share config.json", () => {
  it("htpasswd: berth pushes with what docker login wrote; a wrong password is refused", async () => {
    const reg = (await registry({ auth: { kind: "htpasswd" } }))!;
    regs.push(reg);
    const dir = path.join(work, "htpasswd");
    await dockerLogin(reg, dir);
    expect((await readDockerConfig({ configDir: dir })).auths?.[reg.host]?.auth).toBeTruthy();
    const client = new RegistryClient({ credentials: dockerCredentials({ configDir: dir }) });
    await pushWith(client, reg, "from-docker-login");
    await client.close();
    await expect(login(reg.host, reg.user!.username, "wrong", { configDir: path.join(work, "wrong") })).rejects.toMatchObject({ code: "ERR_REGISTRY_UNAUTHORIZED" });
  });

  it("token auth: docker login stores an identity token, berth uses it with the refresh-token grant", async () => {
    issuer = (await tokenIssuer())!;
    const reg = (await registry({ auth: { kind: "token", issuer } }))!;
    regs.push(reg);
    const dir = path.join(work, "token");
    await dockerLogin(reg, dir);
    const entry = (await readDockerConfig({ configDir: dir })).auths?.[reg.host];
    expect(entry?.identitytoken).toMatch(/^[0-9a-f]{48}$/); // docker asked for an offline token at login
    const mark = issuer.requests.length;
    const client = new RegistryClient({ credentials: dockerCredentials({ configDir: dir }) });
    await pushWith(client, reg, "from-docker-login");
    await client.close();
    expect(issuer.requests.slice(mark).map((r) => [r.method, r.grant, r.account, r.status])).toEqual([["POST", "refresh_token", reg.user!.username, 200]]);
  });

  it("a credsStore helper: docker login stores through it and berth reads through it; berth login then docker pull", async () => {
    const reg = (await registry({ auth: { kind: "htpasswd" } }))!;
    regs.push(reg);
    const dir = path.join(work, "helper");
    const PATH = await installHelper(path.join(work, "helper-bin"), "berthtest");
    const env = { ...process.env, PATH };
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "config.json"), JSON.stringify({ credsStore: "berthtest" }));
    await dockerLogin(reg, dir, { PATH });
    expect(JSON.parse(await readFile(path.join(work, "helper-bin", "store.json"), "utf8"))[reg.host]).toMatchObject({ Username: reg.user!.username });
    const client = new RegistryClient({ credentials: dockerCredentials({ configDir: dir, env }) });
    const digest = await pushWith(client, reg, "via-helper");
    await client.close();

    // berth login into a fresh config.json, then docker pull through the daemon with it
    const dir2 = path.join(work, "berth-login");
    const stored = await login(reg.host, reg.user!.username, reg.user!.password, { configDir: dir2 });
    expect(stored.helper).toBeUndefined();
    const ref = `${reg.host}/login-test/via-helper:v1`;
    const pulled = await peer!.docker(["pull", ref], { env: { DOCKER_CONFIG: dir2 } });
    expect(pulled.output).toContain(digest);
    await peer!.docker(["rmi", ref]);
    expect(await logout(reg.host, { configDir: dir2 })).toBe(true);
    const denied = await peer!.docker(["pull", ref], { env: { DOCKER_CONFIG: dir2 } });
    expect(denied.code).not.toBe(0);
  });
});
