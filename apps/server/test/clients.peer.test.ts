/**
 * Real clients against the registry's HTTP layer (over the in-memory backend
 * double; `serve-store.peer.test.ts` runs them over the store): the shared dockerd pushes and pulls (TLS probe
 * first, then plain HTTP), re-pushes with HEADs only, logs in with token
 * auth and is refused a push with a pull-only account; skopeo copies,
 * inspects and lists tags with `--creds` under Basic and token auth; podman
 * pulls and pushes with Basic auth.
 * Skips without the peers; fails under BERTH_REQUIRE_PEERS=1.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type DockerPeer, busyboxBase, dockerd, exec, requirePeer } from "@berth/peers";
import bcrypt from "bcryptjs";
import { afterAll, describe, expect, it } from "vitest";
import type { AccessRule } from "../src/index.js";
import { startBerth, tempDir } from "./helpers.js";

const peer: DockerPeer | undefined = await dockerd();
const skopeo = await requirePeer("skopeo");
const podman = await requirePeer("podman");
const tmp = tempDir();
afterAll(() => tmp.cleanup());

const htpasswd = join(tmp.dir, "htpasswd");
writeFileSync(htpasswd, `alice:${bcrypt.hashSync("wonderland", 4)}\nreader:${bcrypt.hashSync("books", 4)}\n`);
const RULES: AccessRule[] = [
  { account: "alice", repository: "**", actions: ["pull", "push", "delete"] },
  { account: "reader", repository: "**", actions: ["pull"] },
];
const NS = `berth-server-test-${process.pid}`;

describe.skipIf(!peer)("docker (the shared dockerd) against berth serve", () => {
  it("pushes and pulls; a re-push sends only HEADs; the image ID survives", async () => {
    const { server, log } = await startBerth();
    try {
      const id = await busyboxBase(peer!);
      const ref = `${server.host}:${server.port}/${NS}/busybox:1`;
      await peer!.run(["tag", id, ref]);
      await peer!.run(["push", ref]);
      const uploads = log.filter((e) => e.method === "PATCH" || e.method === "PUT");
      expect(uploads.some((e) => e.method === "PUT" && e.path.includes("/manifests/1") && e.status === 201)).toBe(true);
      expect(log.every((e) => e.status < 500)).toBe(true);

      const before = log.length;
      await peer!.run(["push", ref]);
      const again = log.slice(before);
      expect(again.some((e) => e.method === "POST" || e.method === "PATCH")).toBe(false);
      expect(again.filter((e) => e.method === "HEAD" && e.path.includes("/blobs/")).length).toBeGreaterThan(0);

      await peer!.run(["rmi", ref]);
      await peer!.run(["pull", ref]);
      const inspected = JSON.parse((await peer!.run(["image", "inspect", ref])).stdout) as { Id: string }[];
      expect(inspected[0]!.Id).toBe(id);
      await peer!.run(["rmi", ref]);
    } finally {
      await server.close();
    }
  });

  it("docker login with token auth; a pull-only account cannot push", async () => {
    const { server } = await startBerth({ auth: { mode: "token", htpasswd, access: RULES } });
    const host = `${server.host}:${server.port}`;
    try {
      const id = await busyboxBase(peer!);
      const ref = `${host}/${NS}/token:1`;
      await peer!.run(["tag", id, ref]);
      const anonymous = await peer!.docker(["push", ref]);
      expect(anonymous.code).not.toBe(0);
      expect(anonymous.output).toMatch(/denied|unauthorized/i);
      const bad = await peer!.docker(["login", host, "-u", "alice", "--password-stdin"], { input: "nope\n" });
      expect(bad.code).not.toBe(0);
      await peer!.run(["login", host, "-u", "reader", "--password-stdin"], { input: "books\n" });
      const denied = await peer!.docker(["push", ref]);
      expect(denied.code).not.toBe(0);
      await peer!.run(["login", host, "-u", "alice", "--password-stdin"], { input: "wonderland\n" });
      await peer!.run(["push", ref]);
      await peer!.run(["rmi", ref]);
      await peer!.run(["pull", ref]);
      await peer!.run(["rmi", ref]);
      await peer!.run(["logout", host]);
    } finally {
      await server.close();
    }
  });
});

describe.skipIf(!peer || !skopeo)("skopeo against berth serve", () => {
  for (const mode of ["basic", "token"] as const) {
    it(`copies, inspects and lists tags with --creds (${mode} auth)`, async () => {
      const { server } = await startBerth({ auth: { mode, htpasswd, access: RULES } });
      const host = `${server.host}:${server.port}`;
      const sk = (args: string[]) => exec(skopeo!, args, { timeoutMs: 120_000 });
      try {
        const id = await busyboxBase(peer!);
        const ref = `${host}/${NS}/${mode}:1`;
        await peer!.run(["tag", id, ref]);
        await peer!.run(["login", host, "-u", "alice", "--password-stdin"], { input: "wonderland\n" });
        await peer!.run(["push", ref]);
        await peer!.run(["logout", host]);
        await peer!.run(["rmi", ref]);
        const creds = ["--creds", "alice:wonderland"];
        const copy = await sk(["copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", "alice:wonderland", "--dest-creds", "alice:wonderland", `docker://${ref}`, `docker://${host}/${NS}/copied:2`]);
        expect(copy.code, copy.stderr).toBe(0);
        const inspect = await sk(["inspect", "--tls-verify=false", ...creds, `docker://${host}/${NS}/copied:2`]);
        expect(inspect.code, inspect.stderr).toBe(0);
        expect(JSON.parse(inspect.stdout).Digest).toMatch(/^sha256:/);
        const tags = await sk(["list-tags", "--tls-verify=false", ...creds, `docker://${host}/${NS}/copied`]);
        expect(JSON.parse(tags.stdout).Tags).toEqual(["2"]);
        const oci = join(tmp.dir, `oci-${mode}`);
        const out = await sk(["copy", "--src-tls-verify=false", "--src-creds", "reader:books", `docker://${host}/${NS}/copied:2`, `oci:${oci}:x`]);
        expect(out.code, out.stderr).toBe(0);
        const refused = await sk(["copy", "--dest-tls-verify=false", "--dest-creds", "reader:books", `oci:${oci}:x`, `docker://${host}/${NS}/not-allowed:1`]);
        expect(refused.code).not.toBe(0);
        const wrong = await sk(["inspect", "--tls-verify=false", "--creds", "alice:wrong", `docker://${host}/${NS}/copied:2`]);
        expect(wrong.code).not.toBe(0);
      } finally {
        await server.close();
      }
    });
  }
});

describe.skipIf(!peer || !podman)("podman against berth serve", () => {
  it("pulls what docker pushed and pushes it back under a new name (Basic auth)", async () => {
    const { server } = await startBerth({ auth: { mode: "basic", htpasswd, access: RULES } });
    const host = `${server.host}:${server.port}`;
    // Its own storage and config, so nothing of the machine's podman is touched.
    const root = join(tmp.dir, "podman");
    const pm = (args: string[]) =>
      exec(podman!, ["--root", join(root, "root"), "--runroot", join(root, "run"), "--storage-driver", "vfs", ...args], {
        timeoutMs: 180_000,
        env: { ...process.env, REGISTRY_AUTH_FILE: join(root, "auth.json"), XDG_RUNTIME_DIR: join(root, "xdg") },
      });
    mkdirSync(join(root, "xdg"), { recursive: true, mode: 0o700 });
    writeFileSync(join(root, "auth.json"), '{"auths":{}}');
    try {
      const id = await busyboxBase(peer!);
      const ref = `${host}/${NS}/podman:1`;
      await peer!.run(["tag", id, ref]);
      await peer!.run(["login", host, "-u", "alice", "--password-stdin"], { input: "wonderland\n" });
      await peer!.run(["push", ref]);
      await peer!.run(["logout", host]);
      await peer!.run(["rmi", ref]);
      const pull = await pm(["pull", "--tls-verify=false", "--creds", "reader:books", ref]);
      expect(pull.code, pull.output).toBe(0);
      const push = await pm(["push", "--tls-verify=false", "--creds", "alice:wonderland", ref, `${host}/${NS}/podman-pushed:1`]);
      expect(push.code, push.output).toBe(0);
      const refused = await pm(["push", "--tls-verify=false", "--creds", "reader:books", ref, `${host}/${NS}/podman-refused:1`]);
      expect(refused.code).not.toBe(0);
      const images = await pm(["images", "--format", "{{.ID}}", "--no-trunc", ref]);
      expect(images.stdout.trim()).toBe(id);
    } finally {
      await server.close();
    }
  });
});
