// Child process of concurrency.test.ts: registers an overlapping layer chain
// many times under a lease, holds its top, runs GC between the other
// children's operations, and verifies that nothing it holds or leases is lost.
import { gzipSync } from "node:zlib";
import { type Digest, sha256 } from "@berth/digest";
import { openLayerStore } from "../../src/index.js";
import { tarFor } from "../../src/fixtures.js";

const [root, id, roundsArg] = process.argv.slice(2);
const rounds = Number(roundsArg);
const K = 6;
const contents = Array.from({ length: K }, (_, k) => tarFor(1000 + k, 1024 + k * 700));
const blobs = contents.map((c, k) => (k % 2 === 0 ? gzipSync(c) : c));

async function readAll(r: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

const store = await openLayerStore({ root: root! });
for (let round = 0; round < rounds; round++) {
  const lease = await store.lease();
  let parent: Digest | null = null;
  const chain: Digest[] = [];
  for (let k = 0; k < K; k++) {
    const l = await store.register([blobs[k]!], parent, { lease, expectedDiffID: sha256(contents[k]!) });
    chain.push(l.chainID);
    parent = l.chainID;
  }
  const cfg = await store.content.put(new TextEncoder().encode(`config of ${id} round ${round}`), {}, { lease });
  // Garbage for everybody's GC: a unique layer nobody holds.
  await store.register([tarFor(5000 + Number(id) * 100 + round, 600)]);
  await store.gc();
  if (!(await store.content.has(cfg.digest))) throw new Error(`leased blob ${cfg.digest} was collected`);
  await store.acquire(parent!, `child-${id}`);
  await lease.release();
  await store.gc();
  for (let k = 0; k < K; k++) {
    const l = await store.get(chain[k]!);
    const tar = await readAll(await store.openUncompressed(l.chainID));
    if (sha256(tar) !== l.diffID) throw new Error(`layer ${l.chainID} content does not match its DiffID`);
  }
  if (round < rounds - 1 && round % 2 === 1) await store.release(parent!, `child-${id}`);
}
process.stdout.write("done\n");
