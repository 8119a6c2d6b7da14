// A worker the crash test kills at random moments: prepares children of the
// committed snapshot "base", applies a small layer into each and commits it,
// printing each step. Usage: snapshot-crash.ts ROOT NAME
import { applyLayer, openSnapshotter } from "../../src/index.js";
import { tarOf } from "../snapshot-util.js";

const [root, name] = process.argv.slice(2) as [string, string];
const snaps = await openSnapshotter({ root });
const layer = await tarOf([
  { name: "etc/", type: "directory" },
  { name: "etc/hostname", body: name },
  { name: ".wh.big-0", mode: 0 },
]);
process.stdout.write("ready\n");
for (let i = 0; ; i++) {
  const key = `${name}-${i}`;
  const dir = await snaps.prepare(key, "base");
  process.stdout.write(`prepared ${key}\n`);
  await applyLayer(dir, [layer]);
  await snaps.commit(`${key}-done`, key);
  process.stdout.write(`committed ${key}-done\n`);
}
