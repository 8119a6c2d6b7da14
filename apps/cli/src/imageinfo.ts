import { shortId } from "@berth/digest";
import { parseReference } from "@berth/image-store";
import type { Store } from "./context.js";

type Image = Awaited<ReturnType<Store["images"]["get"]>>;

/** Everything the listing verbs show about one image. */
export interface ImageInfo {
  id: string;
  image: Image;
  /** Normalized references (docker.io/library/x:tag). */
  refs: string[];
  parent: string | undefined;
  children: number;
  created: string | undefined;
}

/** Collect every image with its tags, parent and child count (one pass over the store). */
export async function listImages(store: Store): Promise<ImageInfo[]> {
  const map = await store.images.map();
  const refsById = new Map<string, string[]>();
  for (const { ref, id } of await store.references.list()) {
    const list = refsById.get(id) ?? [];
    list.push(ref);
    refsById.set(id, list);
  }
  const parents = new Map<string, string | undefined>();
  const childCount = new Map<string, number>();
  for (const id of map.keys()) {
    const p = await store.images.getParent(id);
    parents.set(id, p);
    if (p) childCount.set(p, (childCount.get(p) ?? 0) + 1);
  }
  const out: ImageInfo[] = [];
  for (const [id, image] of map) {
    out.push({
      id,
      image,
      refs: (refsById.get(id) ?? []).sort(),
      parent: parents.get(id),
      children: childCount.get(id) ?? 0,
      created: image.config.created,
    });
  }
  // newest first, as docker lists them
  out.sort((a, b) => (Date.parse(b.created ?? "") || 0) - (Date.parse(a.created ?? "") || 0) || a.id.localeCompare(b.id));
  return out;
}

/** Split a normalized reference into the familiar repository and the tag docker shows. */
export function repoTag(ref: string): { repo: string; tag: string; familiar: string } {
  const r = parseReference(ref, { defaultTag: false });
  return { repo: r.familiarName, tag: r.tag ?? (r.digest ? "<none>" : "latest"), familiar: r.familiar };
}

/** The short 12-hex ID. */
export const short = (id: string): string => shortId(id);
