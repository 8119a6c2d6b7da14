/**
 * Layer helpers shared by the filesystem and the in-memory layer store. No
 * file system here: `memory.ts` imports this module.
 * @module
 */
import type { Layer } from "./types.js";

/** A copy of a layer (callers may not change the store's own objects). @internal */
export function copyLayer(l: Layer): Layer {
  const c: Layer = { chainID: l.chainID, diffID: l.diffID, parent: l.parent, size: l.size, blob: { ...l.blob } };
  if (l.contentSize !== undefined) c.contentSize = l.contentSize;
  return c;
}
