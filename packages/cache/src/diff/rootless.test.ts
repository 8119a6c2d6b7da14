import { describe, expect, it } from "vitest";
import { decodeRootlessOwner, encodeRootlessOwner, NOOP_ID } from "./rootless.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("user.rootlesscontainers values", () => {
  it("encodes as umoci does: both fields, 0 as the no-op ID", () => {
    expect(hex(encodeRootlessOwner({ uid: 33, gid: 33 }))).toBe("08211021");
    expect(hex(encodeRootlessOwner({ uid: 0, gid: 42 }))).toBe("08ffffffff0f102a");
    expect(hex(encodeRootlessOwner({ uid: 100_000, gid: 200_000 }))).toBe("08a08d0610c09a0c");
  });

  it("decodes what it encodes, the no-op ID as 'as on disk', and proto3's left-out zeros as 0", () => {
    for (const owner of [{ uid: 33, gid: 33 }, { uid: 1000, gid: 0 }, { uid: NOOP_ID - 1, gid: 7 }]) {
      const d = decodeRootlessOwner(encodeRootlessOwner(owner));
      expect({ uid: d!.uid ?? 0, gid: d!.gid ?? 0 }).toEqual(owner);
    }
    expect(decodeRootlessOwner(Buffer.from("08ffffffff0f102a", "hex"))).toEqual({ gid: 42 });
    expect(decodeRootlessOwner(Buffer.from("102a", "hex"))).toEqual({ uid: 0, gid: 42 });
    expect(decodeRootlessOwner(new Uint8Array(0))).toEqual({ uid: 0, gid: 0 });
    // an unknown length-delimited field is skipped
    expect(decodeRootlessOwner(Buffer.from("1a0278790805", "hex"))).toEqual({ uid: 5, gid: 0 });
  });

  it("refuses what is not a Resource", () => {
    for (const bad of ["08", "08ffffffffff0f", "0d00000000", "1a05", "ff"]) expect(decodeRootlessOwner(Buffer.from(bad, "hex"))).toBeUndefined();
  });
});
