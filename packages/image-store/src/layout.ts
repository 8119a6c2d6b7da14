/**
 * The store root as an OCI image layout: `oci-layout` and `index.json`.
 *
 * `index.json` lists one manifest descriptor per tag, with the normalised
 * reference (`docker.io/library/busybox:1`) as its
 * `org.opencontainers.image.ref.name` — what `skopeo copy oci:<root>:<ref>`
 * and `umoci ls --layout <root>` read — plus `io.containerd.image.name` (the
 * same name, as Docker 25+ and containerd write it) and `io.berth.image.id`
 * (the image ID; it marks the entry as berth's). Entries without that marker
 * were written by another tool (e.g. `skopeo copy … oci:<root>:x`) and are kept
 * untouched. The file is derived from the metadata journal and rewritten
 * atomically under the `images` lock whenever tags change.
 * @module
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import type { Digest } from "@berth/digest";
import type { MetaState } from "./meta.js";
import { isValidOciRefName, parseReference } from "@berth/oci";
import {
  ANNOTATION_CONTAINERD_IMAGE_NAME,
  ANNOTATION_REF_NAME,
  type Descriptor,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  OCI_LAYOUT_VERSION,
  type OciIndex,
  parseIndex,
  type Platform,
} from "@berth/oci";

/** Annotation marking an `index.json` entry as written by berth; its value is the image ID. */
export const ANNOTATION_BERTH_IMAGE_ID = "io.berth.image.id";

/** File names of the layout. */
export const OCI_LAYOUT_FILE = "oci-layout";
/** The layout's index. */
export const INDEX_FILE = "index.json";

/** Serialised `oci-layout` content. */
export const OCI_LAYOUT_CONTENT = `${JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION })}\n`;

function platformOf(s: string): Platform | undefined {
  const [os, architecture, variant] = s.split("/");
  if (!os || !architecture) return undefined;
  const p: Platform = { architecture, os };
  if (variant) p.variant = variant;
  return p;
}

/** Result of reading `index.json`. */
export interface IndexRead {
  index: OciIndex | undefined;
  /** Entries not written by berth. */
  foreign: Descriptor[];
  /** Parse error, if the file exists but is invalid. */
  error?: Error;
  exists: boolean;
}

/** Read and validate `<root>/index.json`. */
export async function readIndex(root: string): Promise<IndexRead> {
  let bytes: Buffer;
  try {
    bytes = await fsp.readFile(path.join(root, INDEX_FILE));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { index: undefined, foreign: [], exists: false };
    throw err;
  }
  try {
    const index = parseIndex(bytes, path.join(root, INDEX_FILE));
    const foreign = index.manifests.filter((m) => m.annotations?.[ANNOTATION_BERTH_IMAGE_ID] === undefined);
    return { index, foreign, exists: true };
  } catch (error) {
    return { index: undefined, foreign: [], error: error as Error, exists: true };
  }
}

/** The `index.json` entries berth derives from the state: one per tag whose name is a valid OCI ref name. */
export function berthEntries(state: MetaState): Descriptor[] {
  const out: Descriptor[] = [];
  const refs = [...state.refs.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const [ref, id] of refs) {
    if (ref.includes("@") || !isValidOciRefName(ref)) continue;
    const rec = state.images.get(id);
    if (!rec) continue;
    const d: Descriptor = {
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      digest: rec.manifest,
      size: rec.manifestSize,
      annotations: {
        [ANNOTATION_CONTAINERD_IMAGE_NAME]: ref,
        [ANNOTATION_BERTH_IMAGE_ID]: id,
        [ANNOTATION_REF_NAME]: ref,
      },
    };
    const p = platformOf(rec.platform);
    if (p) d.platform = p;
    out.push(d);
  }
  return out;
}

/** Serialise the full `index.json` for the state plus the foreign entries to keep. */
export function renderIndex(state: MetaState, foreign: Descriptor[]): string {
  const index: OciIndex = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_INDEX,
    manifests: [...berthEntries(state), ...foreign],
  };
  return `${JSON.stringify(index, null, 2)}\n`;
}

/** True when a normalised reference would get an `index.json` entry. */
export function hasIndexEntry(ref: string): boolean {
  return !ref.includes("@") && isValidOciRefName(ref);
}

/** Manifest digests `index.json` entries of other tools point at (GC keeps them). */
export function foreignManifests(read: IndexRead): Digest[] {
  return read.foreign.map((d) => d.digest);
}

/** Validate that a ref string is already normalised (defensive, for refs read from disk). */
export function isNormalized(ref: string): boolean {
  try {
    return parseReference(ref, { defaultTag: false }).string === ref;
  } catch {
    return false;
  }
}
