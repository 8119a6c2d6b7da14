/**
 * Extended attributes of a layer's entries (PAX `SCHILY.xattr.<name>`
 * records, as Go's archive/tar and GNU tar write them), set on extracted
 * files. Node has no `setxattr`, so they are set in one run of `setfattr`
 * (Debian's `attr`) per layer, from a dump in `getfattr --dump`'s format on
 * its stdin, with `-h`: a symbolic link's own attributes, never its
 * target's. Where there is no `setfattr`, or the file system or the caller's
 * rights refuse one (`security.*` and `trusted.*` need root), it is counted
 * as not applied.
 *
 * tar-stream reads PAX values as UTF-8: a value that is not valid UTF-8
 * (some binary `security.capability` values) arrives with U+FFFD in place of
 * its bytes and is not applied (counted), rather than set wrong.
 * @module
 */
import { spawn } from "node:child_process";
import { programVersion } from "./programs.js";

const PREFIX = "SCHILY.xattr.";

/** The extended attributes of a PAX header, as name → value. */
export function paxXattrs(pax: Record<string, string> | undefined): Array<[string, string]> {
  if (!pax) return [];
  return Object.entries(pax)
    .filter(([k]) => k.startsWith(PREFIX) && k.length > PREFIX.length)
    .map(([k, v]) => [k.slice(PREFIX.length), v]);
}

/** What {@link setXattrs} did. */
export interface XattrResult {
  applied: number;
  notApplied: number;
  /** Why some were not applied (the first few of setfattr's messages, or the reason for all). */
  reasons: string[];
}


/** A name in `getfattr --dump` quoting: every byte outside printable ASCII, and `\`, `=`, as `\ooo`. */
function quote(s: string): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    out += b > 0x20 && b < 0x7f && b !== 0x5c && b !== 0x3d ? String.fromCharCode(b) : `\\${b.toString(8).padStart(3, "0")}`;
  }
  return out;
}

/**
 * Set `attrs` on each absolute `path` (no links followed) in one `setfattr`
 * run; a string value is written as its UTF-8 bytes. Never throws for an
 * attribute that cannot be set: it is counted.
 */
export async function setXattrs(items: Array<{ path: string; attrs: Array<[string, string | Uint8Array]> }>): Promise<XattrResult> {
  const res: XattrResult = { applied: 0, notApplied: 0, reasons: [] };
  let dump = "";
  let wanted = 0;
  for (const { path, attrs } of items) {
    const ok = attrs.filter(([, v]) => typeof v !== "string" || !v.includes("\uFFFD"));
    if (ok.length < attrs.length) {
      res.notApplied += attrs.length - ok.length;
      if (res.reasons.length < 5) res.reasons.push(`${path}: a value that is not valid UTF-8 (tar-stream reads PAX values as UTF-8)`);
    }
    if (ok.length === 0) continue;
    dump += `# file: ${quote(path)}\n${ok.map(([n, v]) => `${quote(n)}=0x${(typeof v === "string" ? Buffer.from(v, "utf8") : Buffer.from(v)).toString("hex")}\n`).join("")}\n`;
    wanted += ok.length;
  }
  if (wanted === 0) return res;
  if ((await programVersion("setfattr")) === undefined) {
    res.notApplied += wanted;
    res.reasons.push("setfattr is not installed (Debian: apt-get install attr)");
    return res;
  }
  const errors = await new Promise<string[]>((resolve, reject) => {
    const child = spawn("setfattr", ["-h", "--restore=-"], { stdio: ["pipe", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (c: Buffer) => {
      if (err.length < 65_536) err += c.toString();
    });
    child.stdin.on("error", () => {}); // an early exit shows in the status
    child.once("error", reject);
    child.once("close", () => resolve(err.split("\n").filter((l) => l.startsWith("setfattr:"))));
    child.stdin.end(dump);
  });
  const failed = Math.min(errors.length, wanted);
  res.applied += wanted - failed;
  res.notApplied += failed;
  for (const e of errors.slice(0, 5 - Math.min(5, res.reasons.length))) res.reasons.push(e);
  return res;
}
