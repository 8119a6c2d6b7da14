import { afterAll, describe, expect, it } from "vitest";
import {
  BUSYBOX_TAG,
  buildImage,
  busyboxBase,
  dockerd,
  dockerdStatus,
  findCommand,
  imageId,
  PeerCommandError,
  PeerUnavailableError,
  peersRequired,
  registry,
  requirePeer,
  startDockerd,
  type RegistryPeer,
} from "./index.js";

function withEnv<T>(name: string, value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const old = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  return fn().finally(() => {
    if (old === undefined) delete process.env[name];
    else process.env[name] = old;
  });
}

describe("commands", () => {
  it("peersRequired follows BERTH_REQUIRE_PEERS", async () => {
    await withEnv("BERTH_REQUIRE_PEERS", "1", async () => expect(peersRequired()).toBe(true));
    await withEnv("BERTH_REQUIRE_PEERS", undefined, async () => expect(peersRequired()).toBe(false));
    await withEnv("BERTH_REQUIRE_PEERS", "0", async () => expect(peersRequired()).toBe(false));
  });

  it("findCommand finds sh and not a missing command", async () => {
    const sh = await findCommand("sh");
    expect(sh).toMatch(/^\/.*\/sh$/);
    expect(await findCommand("berth-no-such-command-xyz")).toBeUndefined();
    expect(await findCommand("../sh")).toBeUndefined();
    expect(await findCommand(sh!)).toBe(sh);
  });

  it("findCommand('docker') is Debian's client or nothing", async () => {
    const d = await findCommand("docker");
    expect(d === undefined || d === "/usr/bin/docker").toBe(true);
  });

  it("requirePeer skips when not required and throws a typed error when required", async () => {
    await withEnv("BERTH_REQUIRE_PEERS", undefined, async () => {
      expect(await requirePeer("berth-no-such-command-xyz")).toBeUndefined();
    });
    await withEnv("BERTH_REQUIRE_PEERS", "1", async () => {
      const err = await requirePeer("berth-no-such-command-xyz").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PeerUnavailableError);
      expect((err as PeerUnavailableError).code).toBe("ERR_PEER_UNAVAILABLE");
      expect(await requirePeer("sh")).toMatch(/\/sh$/);
    });
  });

  it.each(["skopeo", "umoci", "podman", "zstd", "openssl", "chromium", "tmux", "docker-registry"])(
    "requirePeer(%s) finds it or, when required, fails",
    async (name) => {
      const p = await requirePeer(name); // throws under BERTH_REQUIRE_PEERS=1 if missing
      if (p === undefined) expect(peersRequired()).toBe(false);
      else expect(p.startsWith("/")).toBe(true);
    },
  );
});

// Throws here (failing the file) when BERTH_REQUIRE_PEERS=1 and dockerd cannot run.
const peer = await dockerd();

describe.skipIf(!peer)("dockerd", () => {
  it("answers docker version through Debian's client and is shared", async () => {
    const p = peer!;
    expect(p.host).toMatch(/^unix:\/\//);
    expect(p.env.DOCKER_HOST).toBe(p.host);
    const v = await p.run(["version", "--format", "{{.Client.Version}} {{.Server.Version}}"]);
    expect(v.stdout.trim()).toMatch(/^20\.10\.\S+ \S+/);
    const st = await dockerdStatus();
    expect(st.running).toBe(true);
    expect(st.pid).toBeGreaterThan(0);
    expect(await dockerd()).toBe(peer); // memoised in-process
    // Later (and concurrent) starts reuse the running daemon instead of starting another one.
    const again = await Promise.all([startDockerd(), startDockerd(), startDockerd()]);
    for (const a of again) expect(a.host).toBe(p.host);
    expect((await dockerdStatus()).pid).toBe(st.pid);
  });

  it("run() rejects with PeerCommandError naming the command", async () => {
    const err = await peer!.run(["image", "inspect", "berth-test/no-such-image:0"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerCommandError);
    expect((err as Error).message).toMatch(/image inspect berth-test\/no-such-image:0/);
    expect((err as Error).message).toMatch(/No such image/i);
  });

  it("busyboxBase imports a runnable static busybox, idempotently", async () => {
    const p = peer!;
    const id = await busyboxBase(p);
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await busyboxBase(p)).toBe(id);
    expect(await imageId(p, BUSYBOX_TAG)).toBe(id);
    const out = await p.run(["run", "--rm", "--network", "none", BUSYBOX_TAG, "sh", "-c", "echo hello; ls /bin/cat"]);
    expect(out.stdout).toBe("hello\n/bin/cat\n");
  });

  it("buildImage runs a classic build with ENV, COPY and RUN, and a rebuild hits the cache", async () => {
    const p = peer!;
    await busyboxBase(p);
    const opts = {
      tag: "berth-test/peers-classic:1",
      dockerfile: `FROM ${BUSYBOX_TAG}\nENV GREETING=hi\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt > /copy.txt && echo "$GREETING" >> /copy.txt\n`,
      files: { "hello.txt": { content: "hello from context\n", mode: 0o644, mtime: 1_000_000 } },
    };
    const first = await buildImage(p, opts);
    expect(first.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    const inspect = JSON.parse((await p.run(["image", "inspect", opts.tag])).stdout) as Array<{
      Id: string;
      Config: { Env: string[] };
      RootFS: { Layers: string[] };
    }>;
    expect(inspect[0]!.Id).toBe(first.id);
    expect(inspect[0]!.Config.Env).toContain("GREETING=hi");
    expect(inspect[0]!.RootFS.Layers.length).toBe(3); // busybox, COPY, RUN
    const hist = await p.run(["history", "--no-trunc", "--format", "{{.CreatedBy}}", opts.tag]);
    expect(hist.stdout).toContain("#(nop)  ENV GREETING=hi");
    const cat = await p.run(["run", "--rm", "--network", "none", opts.tag, "cat", "/copy.txt"]);
    expect(cat.stdout).toBe("hello from context\nhi\n");
    const second = await buildImage(p, opts);
    expect(second.id).toBe(first.id);
    expect(second.output.match(/Using cache/g)?.length).toBe(3);
  });

  it("buildImage with buildkit builds through the daemon's BuildKit", async () => {
    const p = peer!;
    await busyboxBase(p);
    const r = await buildImage(p, {
      tag: "berth-test/peers-buildkit:1",
      buildkit: true,
      dockerfile: `FROM ${BUSYBOX_TAG}\nARG V=0\nRUN echo "v=$V" > /v\n`,
      buildArgs: { V: "7" },
    });
    expect(r.id).toMatch(/^sha256:/);
    const out = await p.run(["run", "--rm", "--network", "none", "berth-test/peers-buildkit:1", "cat", "/v"]);
    expect(out.stdout).toBe("v=7\n");
  });

  it("buildImage reports a failing build with its output", async () => {
    const err = await buildImage(peer!, {
      tag: "berth-test/peers-fail:1",
      dockerfile: `FROM ${BUSYBOX_TAG}\nRUN echo about-to-fail && false\n`,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerCommandError);
    expect((err as Error).message).toMatch(/about-to-fail/);
  });
});

describe("registry", () => {
  let reg: RegistryPeer | undefined;
  afterAll(async () => {
    await reg?.stop();
  });

  it("serves /v2/ on 127.0.0.1 and stops", async () => {
    reg = await registry();
    if (!reg) {
      expect(peersRequired()).toBe(false);
      return;
    }
    expect(reg.host).toMatch(/^127\.0\.0\.1:\d+$/);
    const res = await fetch(`${reg.url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("docker-distribution-api-version")).toBe("registry/2.0");
    const other = await registry();
    expect(other!.host).not.toBe(reg.host);
    await other!.stop();
    await expect(fetch(`${other!.url}/v2/`)).rejects.toThrow();
  });

  it.skipIf(!peer)("accepts a docker push from the shared daemon", async () => {
    reg ??= await registry();
    if (!reg) return;
    const p = peer!;
    await busyboxBase(p);
    const ref = `${reg.host}/berth-test/busybox:1`;
    await p.run(["tag", BUSYBOX_TAG, ref]);
    await p.run(["push", ref]);
    const tags = (await (await fetch(`${reg.url}/v2/berth-test/busybox/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toEqual(["1"]);
    await p.run(["rmi", ref]);
  });
});
