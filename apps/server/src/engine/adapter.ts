/**
 * The Engine API face's service over `@berth/image-service`: a mapping from
 * the package's results to the face's types (unix seconds, familiar names,
 * dockerd's delete items and load events), with no rule of its own.
 * @module
 */
import type { Digest } from "@berth/digest";
import { type ImageService, manifestSummary, type ImageSummary as ServiceSummary } from "@berth/image-service";
import type { Image } from "@berth/image-store";
import { familiarReference } from "@berth/oci";
import type { DeleteItem, EngineImageService, ImageSummary, ManifestInfo } from "./service.js";

const seconds = (rfc3339: string | undefined): number => Math.floor((Date.parse(rfc3339 ?? "") || 0) / 1000);

/** The Engine face's view of the image service `svc`. */
export function engineService(svc: ImageService): EngineImageService {
  const store = svc.store;
  const manifestsOf = async (image: Image): Promise<ManifestInfo[]> => {
    const m = await manifestSummary(store, image);
    return [{ digest: m.digest, mediaType: m.mediaType, size: m.size, kind: "image", available: m.available, contentSize: m.contentSize, platform: m.platform, unpackedSize: m.unpackedSize }];
  };
  const descriptorOf = (image: Image) => ({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: image.manifestDigest, size: image.manifestSize });
  const summary = async (s: ServiceSummary, manifests: boolean): Promise<ImageSummary> => ({
    id: s.id,
    ...(s.parent ? { parentId: s.parent } : {}),
    repoTags: s.repoTags,
    repoDigests: s.repoDigests,
    created: seconds(s.created),
    size: s.image.size,
    ...(s.sharedSize !== undefined ? { sharedSize: s.sharedSize } : {}),
    labels: s.labels,
    descriptor: descriptorOf(s.image),
    ...(manifests ? { manifests: await manifestsOf(s.image) } : {}),
  });
  const items = (list: ReadonlyArray<{ untagged: string } | { deleted: Digest }>): DeleteItem[] => list.map((i) => ({ ...i }));

  return {
    async list(opts) {
      const rows = await svc.list({ all: opts.all, filters: opts.filters, sharedSize: opts.sharedSize });
      return Promise.all(rows.map((r) => summary(r, opts.manifests)));
    },
    async inspect(name, opts) {
      const d = await svc.inspect(name);
      const c = d.config;
      return {
        id: d.id,
        repoTags: d.repoTags,
        repoDigests: d.repoDigests,
        parent: d.parent ?? "",
        comment: c.comment ?? "",
        ...(c.created !== undefined ? { created: c.created } : {}),
        container: c.container ?? "",
        containerConfig: (c.container_config as Record<string, unknown> | undefined) ?? null,
        dockerVersion: c.docker_version ?? "",
        author: c.author ?? "",
        config: (c.config as Record<string, unknown> | undefined) ?? null,
        architecture: c.architecture,
        ...(c.variant ? { variant: c.variant } : {}),
        os: c.os,
        ...(c["os.version"] ? { osVersion: c["os.version"] } : {}),
        size: d.image.size,
        layers: c.rootfs.diff_ids,
        ...(d.lastTagTime ? { lastTagTime: d.lastTagTime.toISOString() } : {}),
        descriptor: descriptorOf(d.image),
        ...(opts.manifests ? { manifests: await manifestsOf(d.image) } : {}),
      };
    },
    async history(name) {
      return (await svc.history(name)).map((h) => ({
        id: h.id ?? "<missing>",
        created: seconds(h.created),
        createdBy: h.createdBy,
        tags: h.tags,
        size: h.size,
        comment: h.comment,
      }));
    },
    async tag(source, target) {
      await svc.tag(source, target);
    },
    async remove(name, opts) {
      const [outcome] = await svc.remove([name], { force: opts.force, prune: opts.prune });
      if (outcome!.error) throw outcome!.error;
      return items(outcome!.items);
    },
    async prune(filters) {
      const r = await svc.prune({ filters });
      return { deleted: items(r.deleted), spaceReclaimed: r.spaceReclaimed };
    },
    async save(names, opts) {
      const opened = await svc.openSave(names, { signal: opts.signal });
      return { size: opened.plan.size, writeTo: (out) => opened.writeTo(out) };
    },
    async load(archive, opts) {
      // docker load moves tags that name another image
      const result = await svc.load(archive, {
        tagConflict: "move",
        signal: opts.signal,
        restoreParents: false,
        ...(opts.lookupLease !== undefined ? { lookupLease: opts.lookupLease } : {}),
      });
      const seen = new Set<Digest>();
      for (const img of result.images) {
        for (const l of img.layers) {
          if (!l.new || seen.has(l.chainID)) continue;
          seen.add(l.chainID);
          opts.onEvent({ type: "layer", id: l.diffID.slice(7, 19), current: l.blob.size, total: l.blob.size });
        }
      }
      // dockerd's words: a `Loaded image:` line per tag, in archive order; `Loaded image ID:` lines,
      // for every image, only when the archive's last image has no tag (moby's loader resets its tag
      // count per image and reports IDs when the last count is 0)
      for (const img of result.images) for (const tag of img.tags) opts.onEvent({ type: "loaded", tag: familiarReference(tag), id: img.id });
      if (result.images.at(-1)?.tags.length === 0) for (const img of result.images) opts.onEvent({ type: "loaded", id: img.id });
    },
    pull(reference, opts) {
      return svc.pull(reference, {
        signal: opts.signal,
        onProgress: opts.onProgress,
        ...(opts.credential ? { credential: opts.credential } : {}),
        ...(opts.platform ? { platform: opts.platform } : {}),
      });
    },
    push(reference, opts) {
      return svc.push(reference, { signal: opts.signal, onProgress: opts.onProgress, ...(opts.credential ? { credential: opts.credential } : {}) });
    },
    checkLogin(serverAddress, credential, signal) {
      return svc.checkRegistryLogin(serverAddress, credential, { signal });
    },
    lookupLayers(chainIDs) {
      return svc.lookupLayers(chainIDs);
    },
    async importImage(rootfs, opts) {
      const built = await svc.import(
        { stream: rootfs, name: "-" },
        {
          ...(opts.tag ? { tags: [opts.tag] } : {}),
          comment: opts.message,
          changes: opts.changes,
          ...(opts.platform ? { platform: opts.platform } : {}),
          createdBy: "",
          signal: opts.signal,
        },
      );
      return built.id;
    },
    async diskUsage() {
      const du = await svc.diskUsage();
      // dockerd's df lists images as `docker images` does (no intermediates), shared sizes among them
      const rows = await svc.list({ sharedSize: true });
      return { layersSize: du.layersSize, images: await Promise.all(rows.map((r) => summary(r, false))), reclaimable: du.images.reclaimable };
    },
    async storeInfo() {
      return { root: store.root, images: await store.images.len() };
    },
  };
}
