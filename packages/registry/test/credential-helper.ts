/** A real `docker-credential-<name>` helper for tests: a node script keeping its store in a JSON file. */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

const SCRIPT = `#!/usr/bin/env node
const fs = require("fs");
const path = require("path");
const file = path.join(__dirname, "store.json");
const db = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : {};
const input = fs.readFileSync(0, "utf8");
const save = () => fs.writeFileSync(file, JSON.stringify(db));
fs.appendFileSync(path.join(__dirname, "calls.log"), process.argv[2] + " " + (process.argv[2] === "store" ? JSON.parse(input).ServerURL : input.trim()) + "\\n");
switch (process.argv[2]) {
  case "store": { const c = JSON.parse(input); db[c.ServerURL] = c; save(); break; }
  case "get": {
    const c = db[input.trim()];
    if (!c) { process.stdout.write("credentials not found in native keychain\\n"); process.exit(1); }
    process.stdout.write(JSON.stringify(c));
    break;
  }
  case "erase": delete db[input.trim()]; save(); break;
  case "list": process.stdout.write(JSON.stringify(Object.fromEntries(Object.entries(db).map(([k, v]) => [k, v.Username])))); break;
  default: process.stderr.write("unknown action\\n"); process.exit(2);
}
`;

/** Install `docker-credential-<name>` in `dir`; returns the PATH to use (dir first). */
export async function installHelper(dir: string, name: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `docker-credential-${name}`);
  await writeFile(file, SCRIPT);
  await chmod(file, 0o755);
  return `${dir}:${process.env.PATH ?? ""}`;
}
