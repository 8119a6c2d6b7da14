// A child process that hammers one store root; the multi-process and crash
// tests start several of these (and SIGKILL them).
//
//   node --import ./register.mjs worker.ts <root> <mode> <seed> <count> <log>
//
// modes:
//   overlap  create images 0..count-1 of a shared family (every worker makes the
//            same ones) plus `count` of its own, tag each `w<seed>-<k>` and the
//            shared tag `shared:<k>` (force), setParent along the way
//   crash    an endless random mix of register/create/tag/untag/delete/setParent
//            (small data) until killed
//
// Every operation is logged to <log> as `begin <op...>` before and `done <op...>`
// after (appendFileSync: a SIGKILL never loses what was written), so the parent
// knows what committed and what was in flight.
import { appendFileSync } from "node:fs";
import { openStore } from "../../src/index.js";
import { diffIdOf, makeConfig, makeTar } from "../helpers.js";

const [root, mode, seedArg, countArg, log] = process.argv.slice(2);
const seed = Number(seedArg);
const count = Number(countArg);

let rnd = seed * 7919 + 17;
function random(): number {
  // xorshift32: deterministic per seed
  rnd ^= rnd << 13;
  rnd ^= rnd >>> 17;
  rnd ^= rnd << 5;
  return ((rnd >>> 0) % 1_000_000) / 1_000_000;
}
const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)]!;

function logLine(s: string): void {
  appendFileSync(log!, `${s}\n`);
}

async function step<T>(what: string, fn: () => Promise<T>, after?: (r: T) => string): Promise<T> {
  logLine(`begin ${what}`);
  const r = await fn();
  logLine(`done ${what}${after ? ` ${after(r)}` : ""}`);
  return r;
}

const store = await openStore({ root: root! });
const base = makeTar({ "base.txt": "shared base layer" });
const baseLayer = await step("register base", () => store.layers.register([base]));

if (mode === "overlap") {
  const extra = makeTar({ [`w${seed}.txt`]: `worker ${seed}` });
  await store.layers.register([extra], baseLayer.chainID);
  let prev: string | undefined;
  for (let k = 0; k < count; k++) {
    const shared = await step(`create shared ${k}`, () => store.images.create(makeConfig([diffIdOf(base)], { cmd: [`shared-${k}`] })), (i) => i.id);
    const own = await step(
      `create own ${k}`,
      () => store.images.create(makeConfig([diffIdOf(base), diffIdOf(extra)], { cmd: [`w${seed}-${k}`] })),
      (i) => i.id,
    );
    await step(`tag w${seed}-tag:${k} ${own.id}`, () => store.references.tag(`w${seed}-tag:${k}`, own.id));
    await step(`tag shared:${k} ${shared.id}`, () => store.references.tag(`shared:${k}`, shared.id, { force: true }));
    if (prev) await step(`parent ${own.id} ${prev}`, () => store.images.setParent(own.id, prev!));
    prev = own.id;
  }
  await store.close();
  logLine("finished");
} else if (mode === "crash") {
  const layers = [baseLayer];
  const images: string[] = [];
  for (let i = 0; ; i++) {
    const r = random();
    if (r < 0.15 || layers.length < 2) {
      const parent = pick(layers);
      const tar = makeTar({ [`f${seed}-${i}.txt`]: `content ${seed} ${i} ${"x".repeat(Math.floor(random() * 3000))}` });
      const l = await step(`register ${i}`, () => store.layers.register([tar], parent.chainID));
      layers.push(l);
    } else if (r < 0.55) {
      const l = pick(layers);
      // Recover the DiffIDs of the chain, bottom first.
      const diffs: string[] = [];
      for (let cur: string | null = l.chainID; cur !== null; ) {
        const got = await store.layers.get(cur);
        diffs.unshift(got.diffID);
        cur = got.parent;
      }
      const config = makeConfig(diffs, { cmd: [`c${seed}-${i}`] });
      const img = await step(`create ${i}`, () => store.images.create(config), (x) => x.id);
      images.push(img.id);
    } else if (r < 0.75 && images.length > 0) {
      const id = pick(images);
      const ref = `crash/t${Math.floor(random() * 8)}:v${Math.floor(random() * 3)}`;
      await step(`tag ${ref} ${id}`, () => store.references.tag(ref, id, { force: true }));
    } else if (r < 0.82 && images.length > 0) {
      const ref = `crash/t${Math.floor(random() * 8)}:v${Math.floor(random() * 3)}`;
      const list = await store.references.list();
      const hit = list.find((e) => e.ref === `docker.io/${ref}`);
      if (hit) await step(`untag ${ref}`, () => store.references.untag(ref));
    } else if (r < 0.92 && images.length > 1) {
      const id = pick(images);
      const parent = pick(images);
      if (id !== parent) {
        try {
          await step(`parent ${id} ${parent}`, () => store.images.setParent(id, parent));
        } catch (err) {
          if ((err as { code?: string }).code !== "ERR_INVALID_PARENT") throw err;
          logLine(`done parent-refused ${id} ${parent}`);
        }
      }
    } else if (images.length > 0) {
      const id = images.splice(Math.floor(random() * images.length), 1)[0]!;
      await step(`delete ${id}`, () => store.images.delete(id, { prune: random() < 0.3 }));
      // Layers may be gone after a prune: keep only those still present.
      for (let j = layers.length - 1; j >= 0; j--) if (!(await store.layers.has(layers[j]!.chainID))) layers.splice(j, 1);
      if (layers.length === 0) layers.push(await step(`register base again ${i}`, () => store.layers.register([base])));
    }
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
