/**
 * The programs berth runs where Node has no call of its own (GNU cp and
 * setpriv, btrfs, setfattr here; `@berth/image-service`'s zstd for pushes):
 * `cmd --version`, asked once per command and process.
 * @module
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);
const asked = new Map<string, Promise<string | undefined>>();

/** What `cmd --version` printed, or undefined when `cmd` does not run here. */
export function programVersion(cmd: string): Promise<string | undefined> {
  let v = asked.get(cmd);
  if (!v) {
    v = run(cmd, ["--version"]).then(
      (r) => r.stdout,
      () => undefined,
    );
    asked.set(cmd, v);
  }
  return v;
}
