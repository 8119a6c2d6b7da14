// A worker the mutable-ref crash tests kill: makes a mutable ref on the layer
// CHAIN (or on nothing), writes into it and prints "ready <id>". Then, by
// default, waits to be killed before it commits; with MODE "commit", writes
// 8 MB more, prints "committing", commits (diff, layer tar, layer store,
// record, snapshot) and prints "committed <chainID>" before it exits.
// Usage: mutable-crash.ts ROOT [CHAIN|-] [commit]
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openLayerStore } from "@berth/layer-store";
import { openCacheManager } from "../../src/index.js";

const [root, chainArg, mode] = process.argv.slice(2) as [string, string | undefined, string | undefined];
const chain = chainArg === undefined || chainArg === "-" ? null : chainArg;
const layers = await openLayerStore({ root });
const cm = await openCacheManager({ root, layers });
const m = await cm.new(chain, { description: mode === "commit" ? "killed while committing" : "killed before commit" });
const dir = await m.mount();
await writeFile(join(dir, "half-built"), "x".repeat(10_000));
process.stdout.write(`ready ${m.id}\n`);
if (mode === "commit") {
  await writeFile(join(dir, "big.bin"), randomBytes(8 << 20));
  process.stdout.write("committing\n");
  const ref = await m.commit();
  process.stdout.write(`committed ${ref.chainID}\n`);
  process.exit(0);
}
setInterval(() => {}, 60_000);
