// A worker the mutable-ref crash test kills: makes a mutable ref on the layer
// CHAIN (or on nothing), writes into it, prints "ready <id>" and waits to be
// killed before it commits. Usage: mutable-crash.ts ROOT [CHAIN]
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openLayerStore } from "@berth/layer-store";
import { openCacheManager } from "../../src/index.js";

const [root, chain] = process.argv.slice(2) as [string, string | undefined];
const layers = await openLayerStore({ root });
const cm = await openCacheManager({ root, layers });
const m = await cm.new(chain ?? null, { description: "killed before commit" });
await writeFile(join(await m.mount(), "half-built"), "x".repeat(10_000));
process.stdout.write(`ready ${m.id}\n`);
setInterval(() => {}, 60_000);
