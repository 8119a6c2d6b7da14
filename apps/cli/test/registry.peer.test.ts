/**
 * `berth push` and `berth pull` as a user runs them: against the real
 * docker-registry (@berth/peers; skips without it, fails under
 * BERTH_REQUIRE_PEERS=1) a push, a second push that sends nothing, a pull into
 * another store with docker's lines and the RepoDigest, quiet mode; and,
 * with no registry needed, the exit codes and the one `berth: …` line of a
 * missing image, an unreachable registry and a bad platform. `berth copy`
 * from the store to the registry, on to an OCI layout and back into a store.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type RegistryPeer, registry } from "@berth/peers";
import { afterAll, describe, expect, it } from "vitest";
import { berth, berthOk, cacheLayout, makeRootfs, tempDir } from "./helpers.js";

const reg = await registry();
const tmp = tempDir();
afterAll(async () => {
  await reg?.stop();
  tmp.cleanup();
});

describe.skipIf(!reg)("berth push and pull with docker-registry", { timeout: 120_000 }, () => {
  const r = reg as RegistryPeer;
  const rootA = join(tmp.dir, "a");
  const rootB = join(tmp.dir, "b");

  it("push, push again, pull into another store, quietly too", async () => {
    const name = `${r.host}/cli-test/app:1`;
    await berthOk(["import", makeRootfs(join(tmp.dir, "rootfs")), name], { root: rootA });
    const id = (await berthOk(["image", "inspect", "-f", "{{.Id}}", name], { root: rootA })).stdout.trim();

    const pushed = await berthOk(["push", "--progress", "plain", name], { root: rootA });
    expect(pushed.stderr).toContain(`The push refers to repository [${r.host}/cli-test/app]`);
    expect(pushed.stderr).toMatch(/^[0-9a-f]{12}: Done /m);
    expect(pushed.stderr).toContain("Pushed 2 blob(s)");
    const m = /^1: digest: (sha256:[0-9a-f]{64}) size: \d+\n$/.exec(pushed.stdout);
    expect(m).not.toBeNull();
    const digest = m![1]!;

    const again = await berthOk(["push", "--progress", "plain", name], { root: rootA });
    expect(again.stderr).toMatch(/^[0-9a-f]{12}: Exists$/m);
    expect(again.stderr).toContain("Pushed 0 blob(s) (0B), 0 mounted, 2 already there; manifest already there");
    expect(again.stdout).toBe(pushed.stdout);
    expect((await berthOk(["push", "-q", name], { root: rootA })).stdout).toBe(`${name}\n`);

    const pulled = await berthOk(["pull", "--progress", "plain", name], { root: rootB });
    expect(pulled.stdout).toBe(`${name}\n`);
    expect(pulled.stderr).toContain("1: Pulling from cli-test/app\n");
    expect(pulled.stderr).toContain(`Digest: ${digest}\n`);
    expect(pulled.stderr).toContain(`Status: Downloaded newer image for ${name}\n`);
    const inspect = JSON.parse((await berthOk(["image", "inspect", name], { root: rootB })).stdout) as Array<{ Id: string; RepoDigests: string[] }>;
    expect(inspect[0]!.Id).toBe(id);
    expect(inspect[0]!.RepoDigests).toEqual([`${r.host}/cli-test/app@${digest}`]);
    // as docker lists it: the tag's row, no `<none>` row for the RepoDigest of the same repository
    const listed = (await berthOk(["images", "--format", "{{.Repository}}:{{.Tag}}"], { root: rootB })).stdout;
    expect(listed).toBe(`${r.host}/cli-test/app:1\n`);

    const quiet = await berthOk(["pull", "-q", name], { root: rootB });
    expect(quiet).toMatchObject({ stdout: `${name}\n`, stderr: "" });
    const json = await berthOk(["pull", "--progress", "json", name], { root: rootB });
    const summary = json.stderr
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.event === "summary");
    expect(summary).toMatchObject({ status: "up-to-date", id, digest });
  });
});

describe.skipIf(!reg)("berth copy", { timeout: 120_000 }, () => {
  const r = reg as RegistryPeer;

  it("store → registry → OCI layout → another store: the digest on stdout, the same image ID", async () => {
    const rootA = join(tmp.dir, "copy-a");
    await berthOk(["import", makeRootfs(join(tmp.dir, "copy-rootfs")), "app:1"], { root: rootA });
    const id = (await berthOk(["image", "inspect", "-f", "{{.Id}}", "app:1"], { root: rootA })).stdout.trim();
    const up = await berthOk(["copy", "--progress", "plain", "berth:app:1", `docker://${r.host}/cli-copy/app:1`], { root: rootA });
    expect(up.stderr).toContain(`Copying berth:app:1 to docker://${r.host}/cli-copy/app:1\n`);
    expect(up.stderr).toContain("Copied 2 blob(s)");
    expect(up.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const layout = join(tmp.dir, "copy-layout");
    const down = await berthOk(["copy", "-q", `docker://${r.host}/cli-copy/app:1`, `oci:${layout}:v1`], { root: rootA });
    expect(down).toMatchObject({ code: 0, stdout: up.stdout, stderr: "" });
    const json = await berthOk(["copy", "--progress", "json", `oci:${layout}:v1`, "berth:copied:2"], { root: join(tmp.dir, "copy-b") });
    const summary = json.stderr
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.event === "summary");
    expect(summary).toMatchObject({ id, digest: up.stdout.trim(), destination: "berth:copied:2" });
    expect((await berthOk(["image", "inspect", "-f", "{{.Id}}", "copied:2"], { root: join(tmp.dir, "copy-b") })).stdout.trim()).toBe(id);
  });

  it("bad locations are usage errors", async () => {
    const bad = await berth(["copy", "app:1", "oci:/tmp/x"], { root: join(tmp.dir, "copy-a") });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^berth: copy: invalid image location[^\n]*\n$/);
    expect((await berth(["copy", "berth:app:1", "berth:app:2"], { root: join(tmp.dir, "copy-a") })).code).toBe(2);
  });
});

describe.skipIf(!reg)("berth cache import from a registry", { timeout: 120_000 }, () => {
  it("imports a BuildKit cache in image-manifest form pushed to the registry: every lookup hits, chains as BuildKit's", async () => {
    const r = reg as RegistryPeer;
    const layout = join(tmp.dir, "cache-layout");
    const { keys, chainIDs } = await cacheLayout(layout, undefined, "image-manifest");
    const root = join(tmp.dir, "cache-import");
    // another tool's push of the cache (berth copy sends a layout's manifest byte for byte)
    await berthOk(["copy", `oci:${layout}:latest`, `docker://${r.host}/cli-cache/app:buildcache`], { root });
    const mark = (await r.accessLog()).length;
    const imported = await berthOk(["cache", "import", "--progress", "plain", `docker://${r.host}/cli-cache/app:buildcache`], { root });
    expect(imported.stdout).toBe(keys.map((k, i) => `${k}\t${chainIDs[i]}\n`).join(""));
    expect(imported.stderr).toContain(`Imported ${keys.length} of ${keys.length} cache key(s) (records), chains of up to 2 layer(s)`);
    // the manifest, the cache config and each layer blob once
    const gets = (await r.accessLog()).slice(mark).filter((e) => e.method === "GET");
    expect(gets.filter((e) => e.path.includes("/blobs/"))).toHaveLength(3);
    const du = await berthOk(["cache", "du", "--format", "json"], { root });
    expect(du.stdout.trim().split("\n")).toHaveLength(2);
    const missing = await berth(["cache", "import", `docker://${r.host}/cli-cache/none:1`], { root });
    expect(missing.code).toBe(3);
  });
});

describe.skipIf(!reg)("berth cache export to a registry and a layout", { timeout: 120_000 }, () => {
  it("relays a BuildKit cache: exported in image-manifest form, a second export sends only HEADs, imports back with every lookup hitting", async () => {
    const r = reg as RegistryPeer;
    const layout = join(tmp.dir, "export-source");
    const { keys, chainIDs } = await cacheLayout(layout, ["one\n".repeat(3000), "two\n".repeat(5000), "three\n".repeat(7000)], "index");
    const root = join(tmp.dir, "cache-export");
    const dest = `docker://${r.host}/cli-cache/export:buildcache`;
    const mark = (await r.accessLog()).length;
    const first = await berthOk(["cache", "export", "--progress", "plain", dest, "--from", layout], { root });
    expect(first.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect(first.stderr).toContain(`Exported ${keys.length} cache key(s), ${keys.length} with a layer chain (${keys.length} of ${keys.length} found in the source): 4 blob(s) sent`);
    const pushed = (await r.accessLog()).slice(mark);
    expect(pushed.filter((e) => e.method === "PUT" && e.path.includes("/manifests/buildcache") && e.status === 201)).toHaveLength(1);

    // the manifest as BuildKit writes it with image-manifest=true
    const m = await fetch(`http://${r.host}/v2/cli-cache/export/manifests/buildcache`, { headers: { Accept: "application/vnd.oci.image.manifest.v1+json" } });
    const manifest = (await m.json()) as { config: { mediaType: string }; layers: Array<{ annotations: Record<string, string> }> };
    expect(manifest.config.mediaType).toBe("application/vnd.buildkit.cacheconfig.v0");
    expect(manifest.layers).toHaveLength(3);
    expect(manifest.layers.every((l) => l.annotations["containerd.io/uncompressed"]?.startsWith("sha256:"))).toBe(true);

    // unchanged: HEADs only, no upload, the manifest already there
    const mark2 = (await r.accessLog()).length;
    const again = await berthOk(["cache", "export", "--progress", "plain", dest, "--from", layout], { root });
    expect(again.stdout).toBe(first.stdout);
    expect(again.stderr).toContain("0 blob(s) sent, 0 mounted, 4 already there; manifest already there");
    const second = (await r.accessLog()).slice(mark2).filter((e) => e.path.startsWith("/v2/cli-cache/export/"));
    expect(second.filter((e) => e.method === "POST" || e.method === "PATCH" || e.method === "PUT")).toEqual([]);

    // another store imports it back from the registry: every key, the same chains
    const imported = await berthOk(["cache", "import", dest], { root: join(tmp.dir, "cache-export-b") });
    expect(imported.stdout).toBe(keys.map((k, i) => `${k}\t${chainIDs[i]}\n`).join(""));

    // and relayed on from the registry into a layout directory, which imports the same
    const dir = join(tmp.dir, "export-layout");
    await berthOk(["cache", "export", dir, "--from", dest], { root: join(tmp.dir, "cache-export-c") });
    const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")) as { manifests: Array<{ annotations: Record<string, string> }> };
    expect(index.manifests.map((e) => e.annotations["org.opencontainers.image.ref.name"])).toEqual(["latest"]);
    const fromLayout = await berthOk(["cache", "import", dir], { root: join(tmp.dir, "cache-export-d") });
    expect(fromLayout.stdout).toBe(imported.stdout);

    // a destination that names nothing fails at once (exit 2), before the source is read
    const bad = await berth(["cache", "export", "docker://", "--from", join(tmp.dir, "nowhere")], { root });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid image location "docker://"');
  });
});

describe.skipIf(!reg)("berth login and logout", { timeout: 120_000 }, () => {
  it("a wrong password is refused and nothing kept; the right one is kept in DOCKER_CONFIG, push uses it, logout forgets it", async () => {
    const locked = (await registry({ auth: { kind: "htpasswd" } }))!;
    try {
      const user = locked.user!;
      const configDir = join(tmp.dir, "docker-config");
      const env = { DOCKER_CONFIG: configDir };
      const root = join(tmp.dir, "login");
      const name = `${locked.host}/cli-login/app:1`;
      await berthOk(["import", makeRootfs(join(tmp.dir, "login-rootfs")), name], { root });
      const refused = await berth(["push", name], { root, env });
      expect(refused.code).not.toBe(0);
      // as docker: the repository line, then the one error line
      expect(refused.stderr).toMatch(/^(The push refers to repository \[[^\n]*\]\n)?berth: push: [^\n]*\n$/);

      const wrong = await berth(["login", "-u", user.username, "--password-stdin", locked.host], { root, env, input: "wrong\n" });
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toMatch(/^berth: login: [^\n]*\n$/);
      expect(existsSync(join(configDir, "config.json"))).toBe(false);

      const ok = await berthOk(["login", "-u", user.username, "--password-stdin", locked.host], { root, env, input: `${user.password}\n` });
      expect(ok.stdout).toBe("Login Succeeded\n");
      const config = JSON.parse(readFileSync(join(configDir, "config.json"), "utf8")) as { auths: Record<string, { auth: string }> };
      expect(Buffer.from(config.auths[locked.host]!.auth, "base64").toString()).toBe(`${user.username}:${user.password}`);
      await berthOk(["push", name], { root, env });

      expect((await berthOk(["logout", locked.host], { root, env })).stdout).toBe(`Removing login credentials for ${locked.host}\n`);
      expect((await berthOk(["logout", locked.host], { root, env })).stdout).toBe(`Not logged in to ${locked.host}\n`);
      expect((await berth(["login", "-u", user.username, locked.host], { root, env })).code).toBe(2);
    } finally {
      await locked.stop();
    }
  });
});

describe("berth push and pull errors", { timeout: 60_000 }, () => {
  const root = join(tmp.dir, "errors");

  it("a missing image is exit 3 with one line", async () => {
    const r = await berth(["push", "127.0.0.1:5000/cli-test/none:1"], { root });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^berth: push: [^\n]*\n$/);
  });

  it("an unreachable registry is exit 6 with one line", async () => {
    const r = await berth(["pull", "127.0.0.1:1/cli-test/none:1"], { root });
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/^berth: pull: [^\n]*\n$/);
    expect((await berth(["pull", "-D", "127.0.0.1:1/cli-test/none:1"], { root })).stderr).toContain("[ERR_REGISTRY_UNAVAILABLE]");
  });

  it("a bad platform or a digest to push is a usage error", async () => {
    const bad = await berth(["pull", "--platform", "linux", "127.0.0.1:1/cli-test/none:1"], { root });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^berth: pull: invalid platform[^\n]*\n$/);
    const digest = await berth(["push", `127.0.0.1:1/cli-test/none@sha256:${"0".repeat(64)}`], { root });
    expect(digest.code).toBe(2);
    expect(digest.stderr).toMatch(/^berth: push: [^\n]*\n$/);
  });
});
