/**
 * Identity mapping between container IDs and host IDs, as a rootless build
 * uses it (moby `pkg/idtools.IdentityMapping`, BuildKit's `idtools`): files a
 * layer says belong to container uid 0 are owned on the host by, say, uid
 * 100000; when a tree on the host is diffed and written as a layer, host
 * owners are turned back into container owners.
 * @module
 */
import { InvalidArgumentError } from "@berth/digest";
import { DiffErrorCode } from "../errors.js";

/** One range: container IDs `containerID … containerID+size-1` are host IDs `hostID …` (a line of `/etc/subuid`, as `--uidmap` takes it). */
export interface IdMap {
  containerID: number;
  hostID: number;
  size: number;
}

/** An owner: user and group IDs. */
export interface Owner {
  uid: number;
  gid: number;
}

function checkRanges(ranges: readonly IdMap[], what: string): IdMap[] {
  const ok = (n: number) => Number.isSafeInteger(n) && n >= 0 && n <= 0xffffffff;
  for (const r of ranges) {
    if (!ok(r.containerID) || !ok(r.hostID) || !ok(r.size) || r.size === 0) {
      throw new InvalidArgumentError(`${what} mapping ${JSON.stringify(r)}: IDs and size must be whole numbers ≥ 0 (size ≥ 1)`, {
        code: DiffErrorCode.INVALID_ID_MAPPING,
      });
    }
  }
  const overlaps = (key: "containerID" | "hostID") => {
    const sorted = [...ranges].sort((a, b) => a[key] - b[key]);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]![key] < sorted[i - 1]![key] + sorted[i - 1]!.size) return true;
    }
    return false;
  };
  if (overlaps("containerID") || overlaps("hostID")) {
    throw new InvalidArgumentError(`${what} mapping has overlapping ranges`, { code: DiffErrorCode.INVALID_ID_MAPPING });
  }
  return ranges.map((r) => ({ ...r }));
}

function map(ranges: readonly IdMap[], id: number, from: "containerID" | "hostID", to: "containerID" | "hostID"): number | undefined {
  for (const r of ranges) if (id >= r[from] && id < r[from] + r.size) return r[to] + (id - r[from]);
  return undefined;
}

/**
 * Container ↔ host ID mapping for users and groups. An empty mapping (no
 * ranges for either) is the identity. An ID outside every range of a
 * non-empty mapping cannot be represented: `ERR_UNMAPPED_ID`.
 */
export class IdentityMapping {
  readonly uids: readonly IdMap[];
  readonly gids: readonly IdMap[];

  /** @throws InvalidArgumentError `ERR_INVALID_ID_MAPPING` for a bad or overlapping range */
  constructor(uids: readonly IdMap[] = [], gids: readonly IdMap[] = []) {
    this.uids = checkRanges(uids, "uid");
    this.gids = checkRanges(gids, "gid");
  }

  /**
   * Parse `containerID:hostID:size` ranges (podman's `--uidmap` form), for
   * users and groups; groups default to the users' ranges.
   * @throws InvalidArgumentError `ERR_INVALID_ID_MAPPING`
   */
  static parse(uidmap: readonly string[], gidmap: readonly string[] = uidmap): IdentityMapping {
    const parse = (s: string): IdMap => {
      const m = /^(\d+):(\d+):(\d+)$/.exec(s.trim());
      if (!m) throw new InvalidArgumentError(`ID mapping ${JSON.stringify(s)} is not containerID:hostID:size`, { code: DiffErrorCode.INVALID_ID_MAPPING });
      return { containerID: Number(m[1]), hostID: Number(m[2]), size: Number(m[3]) };
    };
    return new IdentityMapping(uidmap.map(parse), gidmap.map(parse));
  }

  /** No ranges: every ID maps to itself. */
  get empty(): boolean {
    return this.uids.length === 0 && this.gids.length === 0;
  }

  /** The host owner of a container owner. @throws InvalidArgumentError `ERR_UNMAPPED_ID` */
  toHost(owner: Owner, what = "owner"): Owner {
    return this.#map(owner, "containerID", "hostID", what);
  }

  /** The container owner of a host owner. @throws InvalidArgumentError `ERR_UNMAPPED_ID` */
  toContainer(owner: Owner, what = "owner"): Owner {
    return this.#map(owner, "hostID", "containerID", what);
  }

  /** The host owner of the container's root (0:0) — who owns a rootless snapshot's files. */
  rootPair(): Owner {
    return this.toHost({ uid: 0, gid: 0 }, "container root");
  }

  #map(owner: Owner, from: "containerID" | "hostID", to: "containerID" | "hostID", what: string): Owner {
    const side = from === "hostID" ? "host" : "container";
    const one = (ranges: readonly IdMap[], id: number, kind: string) => {
      if (ranges.length === 0) return id;
      const v = map(ranges, id, from, to);
      if (v === undefined) {
        throw new InvalidArgumentError(`${what}: ${side} ${kind} ${id} is outside the identity mapping`, {
          code: DiffErrorCode.UNMAPPED_ID,
          details: { [kind]: id },
        });
      }
      return v;
    };
    return { uid: one(this.uids, owner.uid, "uid"), gid: one(this.gids, owner.gid, "gid") };
  }
}
