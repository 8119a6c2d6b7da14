import { type Digest, isSha256Digest, parseDigest } from "../digest.js";

/** Throw the precise typed parse error for the first DiffID that is not a valid digest. */
export function checkDiffIds(diffIds: readonly string[]): readonly Digest[] {
  for (const d of diffIds) if (!isSha256Digest(d)) parseDigest(d);
  return diffIds as readonly Digest[];
}

/** ChainIDs of one chain on a one-shot hex hash function (`hex(s)` = hex digest of the string). */
export function chainIdsWith(hex: (s: string) => string, diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = new Array(diffIds.length);
  let cur: string | undefined;
  for (let i = 0; i < diffIds.length; i++) {
    const d = diffIds[i]!;
    cur = cur === undefined ? d : `sha256:${hex(`${cur} ${d}`)}`;
    out[i] = cur as Digest;
  }
  return out;
}

/** The top ChainID of each chain on a one-shot hex hash function. */
export function chainIdManyWith(hex: (s: string) => string, chains: readonly (readonly Digest[])[]): Digest[] {
  const out: Digest[] = new Array(chains.length);
  for (let c = 0; c < chains.length; c++) {
    const chain = chains[c]!;
    let cur: string = chain[0]!;
    for (let i = 1; i < chain.length; i++) cur = `sha256:${hex(`${cur} ${chain[i]}`)}`;
    out[c] = cur as Digest;
  }
  return out;
}
