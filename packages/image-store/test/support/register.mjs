// Lets a plain `node` child process run the workspace's TypeScript sources:
// `node --import ./register.mjs child.ts`. Test-only (the crash and
// multi-process tests need real processes they can SIGKILL).
import { register } from "node:module";

register("./loader.mjs", import.meta.url);
