/**
 * Owners recorded where they could not be applied: the `user.rootlesscontainers`
 * extended attribute of the rootless containers project
 * (github.com/rootless-containers/proto), which umoci's `--rootless` unpack
 * and repack also use. Its value is a protobuf `Resource { uint32 uid = 1;
 * uint32 gid = 2; }`: the owner inside the container; no attribute means the
 * owner on disk; 0xFFFFFFFF in a field means "that ID as on disk".
 *
 * An extraction that cannot chown (not root) writes it for each entry whose
 * owner is not 0:0 (`applyLayer`'s `recordOwners`); {@link readRootlessOwners}
 * reads a whole tree's in one `getfattr` run, so a commit of the tree writes
 * the recorded owners into the layer. In such a tree a file without one is
 * root's: `directoryTree` reads the current user's files as 0:0 there (as
 * umoci's rootless mode maps them) unless given an identity mapping. Symbolic links cannot carry `user.*`
 * attributes on Linux: their owners are not recorded (as with umoci).
 * @module
 */
import { spawn } from "node:child_process";
import type { Owner } from "./idmap.js";

/** The attribute's name. */
export const ROOTLESS_XATTR = "user.rootlesscontainers";
/** A field set to this keeps the ID on disk. */
export const NOOP_ID = 0xffffffff;

/** A recorded owner: a missing field keeps the ID on disk. */
export type RecordedOwner = Partial<Owner>;

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/**
 * The attribute's value for `owner`, byte for byte as umoci writes it: an ID
 * of 0 is {@link NOOP_ID} (the owner on disk, which is root's in a rootless
 * tree); 0:0 needs no attribute at all.
 */
export function encodeRootlessOwner(owner: Owner): Uint8Array {
  return Uint8Array.from([0x08, ...varint(owner.uid === 0 ? NOOP_ID : owner.uid), 0x10, ...varint(owner.gid === 0 ? NOOP_ID : owner.gid)]);
}

/** The owner an attribute value records, or undefined when it is not a `Resource`. */
export function decodeRootlessOwner(value: Uint8Array): RecordedOwner | undefined {
  const ids = [0, 0];
  let i = 0;
  const read = (): number | undefined => {
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = value[i++];
      if (b === undefined) return undefined;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
    return undefined;
  };
  while (i < value.length) {
    const tag = read();
    if (tag === undefined) return undefined;
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (wire === 0) {
      const v = read();
      if (v === undefined || v > 0xffffffff) return undefined;
      if (field === 1 || field === 2) ids[field - 1] = v;
    } else if (wire === 2) {
      const len = read();
      if (len === undefined || i + len > value.length) return undefined;
      i += len;
    } else return undefined; // fixed-width fields are not in the message: not ours
  }
  const out: RecordedOwner = {};
  if (ids[0] !== NOOP_ID) out.uid = ids[0]!;
  if (ids[1] !== NOOP_ID) out.gid = ids[1]!;
  return out;
}

/** A path as getfattr prints it: `\ooo` for odd bytes, and `\\`. */
function unquote(s: string): string {
  if (!s.includes("\\")) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "\\" && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else if (s[i] === "\\" && s[i + 1] === "\\") {
      bytes.push(0x5c);
      i++;
    } else bytes.push(...Buffer.from(s[i]!, "utf8"));
  }
  return Buffer.from(bytes).toString("utf8");
}

/**
 * The recorded owners under `root`, by path relative to it (`""` for the
 * root), read with one `getfattr -R` (no links followed). Empty when
 * `getfattr` is not installed (nothing can have recorded them here either:
 * `setfattr` comes in the same package). Values that are not a `Resource`
 * are ignored.
 */
export async function readRootlessOwners(root: string): Promise<Map<string, RecordedOwner>> {
  const out = new Map<string, RecordedOwner>();
  const prefix = root.endsWith("/") ? root : `${root}/`;
  await new Promise<void>((resolve, reject) => {
    const child = spawn("getfattr", ["-R", "-P", "-h", "-d", "-m", `^${ROOTLESS_XATTR.replace(".", "\\.")}$`, "-e", "hex", "--absolute-names", "--", root], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let file: string | undefined;
    let rest = "";
    let err = "";
    const line = (l: string) => {
      if (l.startsWith("# file: ")) file = unquote(l.slice(8));
      else if (file !== undefined && l.startsWith(`${ROOTLESS_XATTR}=0x`)) {
        const owner = decodeRootlessOwner(Buffer.from(l.slice(ROOTLESS_XATTR.length + 3), "hex"));
        const rel = file === root ? "" : file.startsWith(prefix) ? file.slice(prefix.length) : undefined;
        if (owner && rel !== undefined) out.set(rel, owner);
      }
    };
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (c: string) => {
      const lines = (rest + c).split("\n");
      rest = lines.pop()!;
      for (const l of lines) line(l);
    });
    child.stderr.on("data", (c: Buffer) => {
      if (err.length < 4096) err += c.toString();
    });
    child.once("error", (e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? resolve() : reject(e)));
    child.once("close", (code) => {
      line(rest);
      if (code === 0) resolve();
      else reject(new Error(`getfattr of ${root} exited with ${code}: ${err.trim().split("\n")[0] ?? ""}`));
    });
  });
  return out;
}
