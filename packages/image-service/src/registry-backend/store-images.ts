/**
 * The store's images as a registry sees them: the references of a store
 * repository (`docker.io/library/app:1`, `…@sha256:…`), the image a tag or a
 * digest names there, the manifest the store wrote for an image, and the
 * blobs those images bring into the repository.
 * @module
 */
import type { Digest } from "@berth/digest";
import type { Store } from "@berth/image-store";
import { MEDIA_TYPE_OCI_MANIFEST } from "@berth/oci";
import { splitStoreReference } from "./names.js";
import type { StoredManifest } from "./types.js";

/** A reference of a store repository. */
export interface RepoReference {
  ref: string;
  id: Digest;
  tag?: string;
  digest?: string;
}

/** The store's images, per repository. */
export class StoreImages {
  constructor(readonly store: Store) {}

  /** References of store repository `name`, sorted. */
  async references(name: string): Promise<RepoReference[]> {
    const out: RepoReference[] = [];
    for (const { ref, id } of await this.store.references.list()) {
      const parts = splitStoreReference(ref);
      if (parts.name === name) out.push({ ref, id, ...(parts.tag !== undefined ? { tag: parts.tag } : {}), ...(parts.digest !== undefined ? { digest: parts.digest } : {}) });
    }
    return out;
  }

  /** Every store repository name with a reference. */
  async names(): Promise<Set<string>> {
    return new Set((await this.store.references.list()).map((r) => splitStoreReference(r.ref).name));
  }

  /** The image `name:tag` names, or undefined. */
  tagged(name: string, tag: string): Promise<Digest | undefined> {
    return this.#resolve(`${name}:${tag}`);
  }

  /** The image `name@digest` names (a RepoDigest, or the store's manifest of an image with a reference in `name`), or undefined. */
  byDigest(name: string, digest: Digest): Promise<Digest | undefined> {
    return this.#resolve(`${name}@${digest}`);
  }

  #resolve(ref: string): Promise<Digest | undefined> {
    return this.store.references.find(ref);
  }

  /** The OCI manifest the store wrote for image `id`. */
  async manifest(id: Digest): Promise<StoredManifest> {
    const m = await this.store.images.manifest(id);
    return { digest: m.digest, mediaType: m.manifest.mediaType ?? MEDIA_TYPE_OCI_MANIFEST, content: m.bytes };
  }

  /** Blobs the images of store repository `name` bring: their store manifests, configs and layer blobs. */
  async members(name: string): Promise<Set<Digest>> {
    const out = new Set<Digest>();
    for (const id of new Set((await this.references(name)).map((r) => r.id))) {
      const m = await this.store.images.manifest(id).catch(() => undefined);
      if (!m) continue;
      out.add(m.digest);
      out.add(m.manifest.config.digest);
      for (const l of m.manifest.layers) out.add(l.digest);
    }
    return out;
  }

  /** Remove every reference of store repository `name` to image `id`; then delete the image when nothing names it. */
  async untagImage(name: string, id: Digest): Promise<void> {
    for (const r of await this.references(name)) if (r.id === id) await this.store.references.untag(r.ref).catch(() => {});
    if ((await this.store.references.referencesOf(id).catch(() => ["?"])).length === 0 && (await this.store.images.children(id)).length === 0) {
      await this.store.images.delete(id).catch(() => {});
    }
  }
}
