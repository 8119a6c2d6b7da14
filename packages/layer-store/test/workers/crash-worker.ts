// Child process of crash.test.ts: does many registers, acquires, releases,
// leases, puts and GCs on one store until it is killed with SIGKILL. It prints
// "held <chainID> <holder>" after an acquire returned and "releasing <chainID>
// <holder>" before a release starts, so the parent knows which holds must
// have survived the kill. Holder names start with the given prefix so that
// workers running side by side never release each other's holds.
import { gzipSync } from "node:zlib";
import type { Digest } from "@berth/digest";
import { hasCode } from "@berth/digest";
import { openLayerStore } from "../../src/index.js";
import { randomBytesFor, tarFor } from "../../src/fixtures.js";

const [root, seedArg, prefix = "w"] = process.argv.slice(2);
let x = Number(seedArg) >>> 0 || 1;
const rnd = (n: number): number => {
  x ^= x << 13;
  x >>>= 0;
  x ^= x >>> 17;
  x ^= x << 5;
  x >>>= 0;
  return x % n;
};
const ignore = (err: unknown, ...codes: string[]) => {
  if (!codes.some((c) => hasCode(err, c))) throw err;
};

const store = await openLayerStore({ root: root! });
const held: Array<[Digest, string]> = [];
process.stdout.write("ready\n");
for (;;) {
  const op = rnd(10);
  const layers = await store.list();
  if (op < 4) {
    // Register one of 40 contents (overlapping with earlier runs) on a random parent.
    const parent = layers.length && rnd(2) ? layers[rnd(layers.length)]!.chainID : null;
    const content = tarFor(rnd(40), 512 + rnd(4096));
    const blob = rnd(2) ? gzipSync(content) : content;
    const useLease = rnd(2) === 0;
    const lease = useLease ? await store.lease() : undefined;
    try {
      const holder = rnd(3) === 0 ? `${prefix}:${rnd(5)}` : undefined;
      const l = await store.register([blob.subarray(0, 100), blob.subarray(100)], parent, { lease, holder });
      if (holder) {
        held.push([l.chainID, holder]);
        process.stdout.write(`held ${l.chainID} ${holder}\n`);
      }
    } catch (err) {
      ignore(err, "ERR_LAYER_NOT_FOUND"); // the parent was collected meanwhile
    } finally {
      if (lease && rnd(2)) await lease.release();
    }
  } else if (op < 6 && layers.length) {
    const l = layers[rnd(layers.length)]!;
    const holder = `${prefix}:${rnd(5)}`;
    try {
      await store.acquire(l.chainID, holder);
      held.push([l.chainID, holder]);
      process.stdout.write(`held ${l.chainID} ${holder}\n`);
    } catch (err) {
      ignore(err, "ERR_LAYER_NOT_FOUND");
    }
  } else if (op < 8 && held.length) {
    const [chainID, holder] = held.splice(rnd(held.length), 1)[0]!;
    process.stdout.write(`releasing ${chainID} ${holder}\n`);
    try {
      await store.release(chainID, holder);
    } catch (err) {
      ignore(err, "ERR_LAYER_NOT_RETAINED", "ERR_LAYER_NOT_FOUND");
    }
  } else if (op === 8) {
    await store.gc();
  } else {
    const w = await store.content.writer();
    await w.write(randomBytesFor(100 + rnd(10), 300));
    if (rnd(3) === 0) await w.abort();
    else await w.commit();
  }
}
