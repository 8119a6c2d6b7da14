import { homedir } from "node:os";
import { join, resolve } from "node:path";

/**
 * The store root: `--root`, else `$BERTH_ROOT`, else `$XDG_DATA_HOME/berth`,
 * else `~/.local/share/berth` (design.md, "The embedded default store").
 */
export function resolveRoot(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return resolve(flag);
  if (env.BERTH_ROOT) return resolve(env.BERTH_ROOT);
  if (env.XDG_DATA_HOME) return join(resolve(env.XDG_DATA_HOME), "berth");
  return join(homedir(), ".local", "share", "berth");
}
