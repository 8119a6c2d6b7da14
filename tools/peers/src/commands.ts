import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { delimiter, isAbsolute, join } from "node:path";
import { PeerUnavailableError } from "./errors.js";

/**
 * True when missing peers must fail tests instead of skipping them: the
 * environment variable `BERTH_REQUIRE_PEERS` is `1` (or `true`). CI sets it.
 */
export function peersRequired(): boolean {
  const v = process.env.BERTH_REQUIRE_PEERS;
  return v === "1" || v === "true";
}

/** Directories searched before `$PATH`, so Debian's packaged binaries win over /usr/local ones. */
const SYSTEM_DIRS = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"];

/**
 * Where some peers must come from, or what else they may be called.
 * `docker` is always Debian's 20.10 client: /usr/local/bin/docker is a newer
 * client the project does not test against.
 */
const CANDIDATES: Record<string, { paths?: string[]; names?: string[]; env?: string }> = {
  docker: { paths: ["/usr/bin/docker"] },
  chromium: { names: ["chromium", "chromium-browser"], env: "CHROMIUM_PATH" },
  "docker-registry": { names: ["docker-registry", "registry"] },
};

async function isExecutableFile(p: string): Promise<boolean> {
  try {
    const st = await stat(p);
    if (!st.isFile()) return false;
    await access(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Absolute path of the executable `name`, or undefined when it is not installed.
 * An absolute `name` is checked as is. Searches /usr/bin, /usr/sbin, /bin, /sbin
 * first, then `$PATH`. `docker` resolves only to Debian's `/usr/bin/docker`;
 * `chromium` honours `$CHROMIUM_PATH` and also tries `chromium-browser`.
 */
export async function findCommand(name: string): Promise<string | undefined> {
  if (isAbsolute(name)) return (await isExecutableFile(name)) ? name : undefined;
  if (name.includes("/") || name === "") return undefined;
  const spec = CANDIDATES[name];
  if (spec?.env) {
    const p = process.env[spec.env];
    if (p && isAbsolute(p) && (await isExecutableFile(p))) return p;
  }
  if (spec?.paths) {
    for (const p of spec.paths) if (await isExecutableFile(p)) return p;
    return undefined;
  }
  const names = spec?.names ?? [name];
  const dirs = [...SYSTEM_DIRS, ...(process.env.PATH ?? "").split(delimiter).filter((d) => isAbsolute(d))];
  for (const n of names) {
    for (const d of dirs) {
      const p = join(d, n);
      if (await isExecutableFile(p)) return p;
    }
  }
  return undefined;
}

/** Debian package that provides each peer (for error messages). */
export const PEER_PACKAGES: Readonly<Record<string, string>> = {
  docker: "docker.io",
  dockerd: "docker.io",
  containerd: "containerd",
  runc: "runc",
  skopeo: "skopeo",
  umoci: "umoci",
  podman: "podman",
  zstd: "zstd",
  openssl: "openssl",
  chromium: "chromium",
  tmux: "tmux",
  "docker-registry": "docker-registry",
  busybox: "busybox-static",
  tar: "tar",
  "mkfs.xfs": "xfsprogs",
  "mkfs.btrfs": "btrfs-progs",
  btrfs: "btrfs-progs",
  setfattr: "attr",
  getfattr: "attr",
};

/**
 * Like {@link findCommand}, but when the command is missing and
 * {@link peersRequired} is true, throws {@link PeerUnavailableError} (code
 * `ERR_PEER_UNAVAILABLE`) naming the Debian package to install. Returns
 * undefined (so the caller can skip) when it is missing and not required.
 */
export async function requirePeer(name: string): Promise<string | undefined> {
  const p = await findCommand(name);
  if (p === undefined && peersRequired()) {
    const pkg = PEER_PACKAGES[name];
    throw new PeerUnavailableError(
      `peer command "${name}" is not installed but BERTH_REQUIRE_PEERS=1` +
        (pkg ? ` (Debian package: apt-get install -y ${pkg})` : ""),
      { details: { name, package: pkg } },
    );
  }
  return p;
}
