import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { Digest } from "../digest.js";
import type { Input, Sha256Backend, Sha256Hash } from "../types.js";
import { chainIdManyWith, chainIdsWith } from "./generic.js";

const encoder = new TextEncoder();
const toBytes = (data: Input): Uint8Array => (typeof data === "string" ? encoder.encode(data) : data);
const hex = (data: Input): string => bytesToHex(nobleSha256(toBytes(data)));

class NobleHash implements Sha256Hash {
  #h: ReturnType<typeof nobleSha256.create> | undefined = nobleSha256.create();

  update(data: Input): this {
    if (this.#h === undefined) throw new Error("sha256: hash already finished");
    this.#h.update(toBytes(data));
    return this;
  }

  #finish(): Uint8Array {
    if (this.#h === undefined) throw new Error("sha256: hash already finished");
    const out = this.#h.digest();
    this.#h = undefined;
    return out;
  }

  digest(): Digest {
    return `sha256:${bytesToHex(this.#finish())}` as Digest;
  }

  digestInto(out: Uint8Array): void {
    if (out.length < 32) throw new RangeError("sha256: digestInto needs 32 bytes");
    out.set(this.#finish());
  }

  destroy(): void {
    this.#h?.destroy();
    this.#h = undefined;
  }
}

/** The @noble/hashes backend (audited pure JavaScript; runs anywhere). */
export const nobleBackend: Sha256Backend = {
  name: "noble",
  hash: (data) => `sha256:${hex(data)}` as Digest,
  create: () => new NobleHash(),
  hashMany: (messages) => messages.map((m) => `sha256:${hex(m)}` as Digest),
  chainIds: (diffIds) => chainIdsWith(hex, diffIds),
  chainIdMany: (chains) => chainIdManyWith(hex, chains),
};
