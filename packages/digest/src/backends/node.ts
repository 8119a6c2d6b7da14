import * as crypto from "node:crypto";
import type { Digest } from "../digest.js";
import type { Input, Sha256Backend, Sha256Hash } from "../types.js";

// crypto.hash() (Node >= 20.12) is a one-shot without the Hash object's
// allocation; 1.5-2.5x faster than createHash() for small messages.
const oneShot: ((alg: string, data: Input, enc: "hex") => string) | undefined = (
  crypto as unknown as { hash?: (alg: string, data: Input, enc: "hex") => string }
).hash;

function hashHex(data: Input): string {
  if (oneShot !== undefined) return oneShot("sha256", data, "hex");
  return crypto.createHash("sha256").update(data).digest("hex");
}

class NodeHash implements Sha256Hash {
  #h: crypto.Hash | undefined = crypto.createHash("sha256");

  update(data: Input): this {
    if (this.#h === undefined) throw new Error("sha256: hash already finished");
    this.#h.update(data);
    return this;
  }

  #finish(): Buffer {
    if (this.#h === undefined) throw new Error("sha256: hash already finished");
    const out = this.#h.digest();
    this.#h = undefined;
    return out;
  }

  digest(): Digest {
    return `sha256:${this.#finish().toString("hex")}` as Digest;
  }

  digestInto(out: Uint8Array): void {
    if (out.length < 32) throw new RangeError("sha256: digestInto needs 32 bytes");
    out.set(this.#finish());
  }

  destroy(): void {
    this.#h = undefined;
  }
}

/** The node:crypto backend (OpenSSL; uses SHA-NI where the CPU has it). */
export const nodeBackend: Sha256Backend = {
  name: "node",
  hash(data) {
    return `sha256:${hashHex(data)}` as Digest;
  },
  create() {
    return new NodeHash();
  },
  hashMany(messages) {
    const out = new Array<Digest>(messages.length);
    for (let i = 0; i < messages.length; i++) out[i] = `sha256:${hashHex(messages[i]!)}` as Digest;
    return out;
  },
  chainIds(diffIds) {
    const out: Digest[] = [];
    let cur: string | undefined;
    for (const d of diffIds) {
      cur = cur === undefined ? d : `sha256:${hashHex(`${cur} ${d}`)}`;
      out.push(cur as Digest);
    }
    return out;
  },
  chainIdMany(chains) {
    const out = new Array<Digest>(chains.length);
    for (let c = 0; c < chains.length; c++) {
      const chain = chains[c]!;
      let cur: string = chain[0]!;
      for (let i = 1; i < chain.length; i++) cur = `sha256:${hashHex(`${cur} ${chain[i]}`)}`;
      out[c] = cur as Digest;
    }
    return out;
  },
};
