/**
 * An htpasswd file of bcrypt hashes (`user:$2y$10$…`, what `htpasswd -B` and
 * distribution's htpasswd auth use), checked with bcryptjs.
 *
 * bcrypt is slow on purpose (~50–100 ms a check at cost 10), and Basic auth
 * sends the password on every request, so a successful check is remembered
 * for a minute under the SHA-256 of `user:password` (never the password
 * itself), in a bounded map. Unknown users still pay one bcrypt compare, so
 * response times do not tell which accounts exist. The file is re-read when
 * its mtime or size changes (checked at most every 2 s), which also forgets
 * what was remembered.
 * @module
 */
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { InvalidArgumentError } from "@berth/digest";
import bcrypt from "bcryptjs";
import { SERVER_ERROR_CODES } from "../errors.js";

const BCRYPT_RE = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;
// A hash of a random password, compared against when the user is unknown.
const DUMMY_HASH = "$2b$10$CwTycUXWue0Thq9StjUM0uJ8.Fp3yWx0VpnB5/zF6aLkJ9dP0mS6a";
const REMEMBER_MS = 60_000;
const REMEMBER_MAX = 1024;
const STAT_EVERY_MS = 2_000;

function htpasswdError(path: string, why: string, cause?: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`htpasswd file ${path}: ${why}`, { code: SERVER_ERROR_CODES.htpasswd, cause, details: { path } });
}

/** Parse htpasswd text into user → bcrypt hash. @throws InvalidArgumentError `ERR_SERVER_HTPASSWD` naming the line */
export function parseHtpasswd(text: string, path = "(text)"): Map<string, string> {
  const users = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const colon = line.indexOf(":");
    if (colon <= 0) throw htpasswdError(path, `line ${i + 1}: expected user:hash`);
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (!BCRYPT_RE.test(hash)) throw htpasswdError(path, `line ${i + 1}: user ${JSON.stringify(user)} has no bcrypt hash (use htpasswd -B)`);
    users.set(user, hash);
  });
  return users;
}

/** Verifies `user:password` pairs against an htpasswd file. */
export class Htpasswd {
  private users = new Map<string, string>();
  private remembered = new Map<string, number>();
  private stamp = "";
  private lastStat = 0;

  private constructor(readonly path: string) {}

  /** Read the file. @throws InvalidArgumentError `ERR_SERVER_HTPASSWD` */
  static open(path: string): Htpasswd {
    const h = new Htpasswd(path);
    h.reload(true);
    return h;
  }

  private reload(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastStat < STAT_EVERY_MS) return;
    this.lastStat = now;
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.mtimeMs}:${st.size}`;
    } catch (cause) {
      if (force) throw htpasswdError(this.path, "cannot read it", cause);
      return; // keep the accounts we have if the file vanishes for a moment
    }
    if (stamp === this.stamp) return;
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (cause) {
      if (force) throw htpasswdError(this.path, "cannot read it", cause);
      return;
    }
    try {
      this.users = parseHtpasswd(text, this.path);
    } catch (err) {
      if (force) throw err;
      return; // a half-edited file: keep the last good one
    }
    this.stamp = stamp;
    this.remembered.clear();
  }

  /** True when the password is right for the user. */
  async verify(user: string, password: string): Promise<boolean> {
    this.reload(false);
    const key = createHash("sha256").update(`${user}\0${password}`).digest("base64");
    const until = this.remembered.get(key);
    if (until !== undefined && until > Date.now()) return true;
    const hash = this.users.get(user);
    const ok = await bcrypt.compare(password, hash ?? DUMMY_HASH);
    if (!ok || hash === undefined) return false;
    if (this.remembered.size >= REMEMBER_MAX) this.remembered.delete(this.remembered.keys().next().value!);
    this.remembered.set(key, Date.now() + REMEMBER_MS);
    return true;
  }
}
