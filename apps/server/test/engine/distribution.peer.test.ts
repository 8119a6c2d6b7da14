/**
 * `docker pull`, `docker push` and `docker login` through `berth serve` with
 * the stock docker CLIs, against the reference registry (docker-registry,
 * distribution 2.8, through @berth/peers): the CLI's words and exit codes,
 * and the images themselves — what berth pulled has the registry's image
 * ID, what it pushed another store pulls with the same ID. Fails under
 * BERTH_REQUIRE_PEERS=1 without the peers.
 */
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImageService } from "@berth/image-service";
import { openStore } from "@berth/image-store";
import { exec, type RegistryPeer, registry, requirePeer } from "@berth/peers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServingStore, serveStore } from "../../src/index.js";
import { DOCKER_CLIS } from "./helpers.js";

await requirePeer("docker");
const reg = await registry();
const locked = await registry({ auth: { kind: "htpasswd" } });

let dir: string;
let server: ServingStore;
let src: ImageService;
let imageId: string;
const services: ImageService[] = [];

/** A fresh image service in `dir`. */
async function service(name: string): Promise<ImageService> {
  const svc = new ImageService(await openStore({ root: join(dir, name) }));
  services.push(svc);
  return svc;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-engine-dist-"));
  server = await serveStore({ root: join(dir, "served"), port: 0, socketPath: join(dir, "berth.sock"), log: { format: "none" }, sweepIntervalMs: 0 });
  // an image of two layers in the registries, pushed by berth from a store of its own
  src = await service("src");
  const files = async (name: string, content: Record<string, string>) => {
    const root = join(dir, name);
    for (const [rel, text] of Object.entries(content)) {
      await mkdir(join(root, rel, ".."), { recursive: true });
      await writeFile(join(root, rel), text);
    }
    return root;
  };
  const base = await src.build({ layers: [await files("base", { "etc/os-release": "ID=berth-engine-test\n" })] });
  const app = await src.build({ base: base.id, layers: [await files("app", { "app/hello.txt": `pulled through berth ${process.pid}\n` })], tags: ["engine-dist/app:1"] });
  imageId = app.id;
  for (const r of [reg, locked]) {
    if (!r) continue;
    await src.tag(app.id, `${r.host}/engine-dist/app:1`);
    await src.push(`${r.host}/engine-dist/app:1`, r.user ? { credential: r.user } : {});
  }
}, 120_000);
afterAll(async () => {
  for (const s of services) await s.close();
  await server?.close();
  await reg?.stop();
  await locked?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe.each(DOCKER_CLIS)("docker $name through berth serve", { timeout: 120_000 }, (cli) => {
  const env = () => ({ ...process.env, DOCKER_HOST: `unix://${server.socketPath}`, DOCKER_CONFIG: join(dir, `docker-config-${cli.name}`), DOCKER_CONTEXT: "" });
  const docker = (args: string[]) => exec(cli.path, args, { env: env(), timeoutMs: 90_000 });

  it("docker pull: the layers' progress, the digest, the registry's image ID in docker images; again: up to date", async () => {
    const r0 = reg as RegistryPeer;
    const name = `${r0.host}/engine-dist/app:1`;
    // the image gone with every reference (the other client's push test tags it again): a pull
    // of an image the store holds shows no layer lines, as dockerd's
    await server.service.remove([imageId], { force: true }).catch(() => undefined);
    const r = await docker(["pull", name]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Pulling from engine-dist/app");
    expect(r.stdout).toMatch(/Digest: sha256:[0-9a-f]{64}/);
    expect(r.stdout).toContain(`Status: Downloaded newer image for ${name}`);
    expect(r.stdout.match(/[0-9a-f]{12}: (Pull complete|Already exists)/g)).toHaveLength(2);
    const ids = await docker(["images", "--no-trunc", "--format", "{{.ID}}", name]);
    expect(ids.stdout.trim()).toBe(imageId);
    const again = await docker(["pull", name]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`Status: Image is up to date for ${name}`);
    expect(again.stdout).not.toMatch(/[0-9a-f]{12}: /); // dockerd reports no layer of an image it holds
  });

  it("docker pull of an image the registry lacks: exit 1 and the registry's reason", async () => {
    const r = await docker(["pull", `${(reg as RegistryPeer).host}/engine-dist/nope:1`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Error response from daemon: .*(not found|unknown)/i);
  });

  it("docker push: the digest line, and another store pulls the same image ID", async () => {
    const r0 = reg as RegistryPeer;
    const pulled = `${r0.host}/engine-dist/app:1`;
    const target = `${r0.host}/engine-dist/pushed-${cli.name.replace(/\W/g, "")}:2`;
    await server.service.pull(pulled);
    await server.service.tag(pulled, target);
    const r = await docker(["push", target]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`The push refers to repository [${target.slice(0, target.lastIndexOf(":"))}]`);
    expect(r.stdout).toMatch(/2: digest: sha256:[0-9a-f]{64} size: \d+/);
    expect(r.stdout.match(/[0-9a-f]{12}: (Pushed|Layer already exists|Mounted from engine-dist\/app)/g)).toHaveLength(2);
    const other = await service(`other-${cli.name}`);
    expect((await other.pull(target)).id).toBe(imageId);
  });

  it("docker push of a built image (its layers stored as tars): each layer gzipped on the way, a Pushed line per DiffID", async () => {
    const r0 = reg as RegistryPeer;
    const target = `${r0.host}/engine-dist/built-${cli.name.replace(/\W/g, "")}:3`;
    const root = join(dir, `built-${cli.name}`);
    await mkdir(join(root, "srv"), { recursive: true });
    await writeFile(join(root, "srv", "index.html"), `built for ${cli.name} ${process.pid}\n`.repeat(500));
    const built = await server.service.build({ layers: [root], tags: [target] });
    const diffIDs = (await server.service.inspect(built.id)).config.rootfs.diff_ids;
    const r = await docker(["push", target]);
    expect(r.code, r.stderr).toBe(0);
    for (const d of diffIDs) expect(r.stdout).toContain(`${d.slice(7, 19)}: Pushed`);
    const other = await service(`built-other-${cli.name}`);
    expect((await other.pull(target)).id).toBe(built.id);
  });

  it("docker login checks the credential with the registry; pulls then use it", async () => {
    const l = locked as RegistryPeer;
    const bad = await docker(["login", l.host, "-u", l.user!.username, "-p", "wrong"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/unauthorized|401/i);
    const ok = await docker(["login", l.host, "-u", l.user!.username, "-p", l.user!.password]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("Login Succeeded");
    const r = await docker(["pull", `${l.host}/engine-dist/app:1`]);
    expect(r.code, r.stderr).toBe(0);
    expect((await server.service.inspect(`${l.host}/engine-dist/app:1`)).id).toBe(imageId);
  });
});
