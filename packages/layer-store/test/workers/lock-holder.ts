// Child process of lock.test.ts: takes a lock and keeps it until killed.
import { withLock } from "../../src/index.js";

await withLock(process.argv[2]!, process.argv[3]!, async () => {
  process.stdout.write("locked\n");
  await new Promise(() => setInterval(() => {}, 1000)); // keep the process alive until killed
});
