/** `interruptible`: what a SIGTERM during and after the work reports. */
import { describe, expect, it } from "vitest";
import { InterruptedError } from "../src/exit.js";
import { interruptible } from "../src/interrupt.js";

/** Deliver SIGTERM to this process's listeners (as the signal would), then let the loop turn. */
async function sigterm(): Promise<void> {
  process.emit("SIGTERM", "SIGTERM");
  await new Promise((resolve) => setImmediate(resolve));
}

describe("interruptible", () => {
  it("a signal that stops the work: exit 130's error says nothing was kept, whatever error the work failed with", async () => {
    let aborted: InterruptedError | undefined;
    const work = interruptible(
      async () => {
        await sigterm();
        throw aborted ? new Error("stream destroyed") : new Error("not aborted");
      },
      (err) => {
        aborted = err;
      },
      () => "unused",
    );
    await expect(work).rejects.toMatchObject({ code: "ERR_INTERRUPTED", message: "interrupted (SIGTERM); nothing was kept" });
    expect(aborted).toBeInstanceOf(InterruptedError);
  });

  it("a signal that comes once the work can no longer be undone says what was kept", async () => {
    const work = interruptible(
      async () => {
        await sigterm();
        return 2;
      },
      () => {},
      (n) => `the load had already committed: kept ${n} image(s)`,
    );
    await expect(work).rejects.toMatchObject({ code: "ERR_INTERRUPTED", message: "interrupted (SIGTERM); the load had already committed: kept 2 image(s)" });
  });

  it("no signal: the work's result; the listeners are gone afterwards", async () => {
    const before = process.listenerCount("SIGTERM");
    expect(await interruptible(async () => 3, () => {})).toBe(3);
    expect(process.listenerCount("SIGTERM")).toBe(before);
  });
});
