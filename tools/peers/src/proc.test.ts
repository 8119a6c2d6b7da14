import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PeerLockError } from "./errors.js";
import { exec, execOk } from "./exec.js";
import { isAlive, sleep, withLock } from "./proc.js";

const dir = await mkdtemp(join(tmpdir(), "berth-peers-proc-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("withLock", () => {
  it("serialises holders and releases the lock file", async () => {
    const lock = join(dir, "a.lock");
    let inside = 0;
    let maxInside = 0;
    const order: number[] = [];
    await Promise.all(
      [1, 2, 3, 4].map((n) =>
        withLock(lock, 10_000, async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await sleep(20);
          order.push(n);
          inside--;
        }),
      ),
    );
    expect(maxInside).toBe(1);
    expect(order.sort()).toEqual([1, 2, 3, 4]);
    await expect(readFile(lock)).rejects.toThrow();
  });

  it("breaks a lock whose holder process is gone", async () => {
    const lock = join(dir, "stale.lock");
    const dead = await exec("sh", ["-c", "echo $$"]);
    const pid = Number(dead.stdout.trim());
    expect(await isAlive(pid)).toBe(false);
    await writeFile(lock, `${pid} deadbeef`);
    expect(await withLock(lock, 5_000, async () => "got it")).toBe("got it");
  });

  it("times out with PeerLockError while a live process holds it", async () => {
    const lock = join(dir, "held.lock");
    await writeFile(lock, `${process.pid} othertoken`);
    const err = await withLock(lock, 300, async () => 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerLockError);
    expect((err as PeerLockError).code).toBe("ERR_PEER_LOCK");
  });
});

describe("exec", () => {
  it("collects output, exit code, input and stdoutFile", async () => {
    const r = await exec("sh", ["-c", "cat; echo err >&2; exit 3"], { input: "in\n" });
    expect(r).toMatchObject({ stdout: "in\n", stderr: "err\n", code: 3 });
    const f = join(dir, "out.bin");
    const w = await execOk("sh", ["-c", "printf abc"], { stdoutFile: f });
    expect(w.stdout).toBe("");
    expect(await readFile(f, "utf8")).toBe("abc");
  });

  it("rejects with typed errors for failures, missing commands and timeouts", async () => {
    await expect(execOk("sh", ["-c", "echo boom >&2; exit 2"])).rejects.toMatchObject({
      code: "ERR_PEER_COMMAND",
      message: expect.stringMatching(/exited with code 2:\nboom/),
    });
    await expect(exec("/nonexistent/berth-cmd", [])).rejects.toMatchObject({ code: "ERR_PEER_UNAVAILABLE" });
    await expect(exec("sleep", ["5"], { timeoutMs: 200 })).rejects.toMatchObject({ code: "ERR_PEER_TIMEOUT" });
  });
});
