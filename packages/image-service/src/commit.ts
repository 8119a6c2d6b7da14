/**
 * `docker commit` without a container: the difference between an edited
 * root filesystem (a directory) and a base image's merged filesystem, as one
 * new deterministic layer on the base — what `berth commit DIR --base IMAGE`
 * does. The base's filesystem comes from its layers' tar headers
 * (`layertree.ts`, whiteouts and opaque directories applied); nothing is
 * extracted. The diff is `@berth/cache`'s (Docker's change rules, removals
 * as whiteouts, an emptied directory as opaque); the image is made by
 * {@link buildImage} (base layers + the new layer, a history entry, the
 * `--change` instructions, the parent link, the tags).
 * @module
 */
import { basename } from "node:path";
import { diffDirectory, directoryTree, emptyTree, type IdentityMapping, type Tree, writeLayer } from "@berth/cache";
import type { Store } from "@berth/image-store";
import { type BuiltImage, buildImage, trustedLayer } from "./build.js";
import { sourceDateEpoch } from "./dirlayer.js";
import { imageTree } from "./imagediff.js";

/** Options of {@link commitDirectory}. */
export interface CommitOptions {
  /** The edited root filesystem. */
  dir: string;
  /** Name, ID or ID prefix of the image `dir` was made from; none: every path of `dir` is new (as `berth import DIR`, with owners kept). */
  base?: string;
  /** References to point at the new image. */
  tags?: readonly string[];
  /** Dockerfile instructions (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR), as `docker commit --change`. */
  changes?: readonly string[];
  /** History comment (`docker commit --message`). */
  message?: string;
  /** History `created_by`; default `berth commit <basename of dir>`. */
  createdBy?: string;
  /** Compare the contents of files whose metadata is unchanged (costs reading them; the base's layer headers carry no digests, so against an image this only applies where `lower` can open files). */
  compareContent?: boolean;
  /** Keep the files' mtimes in the layer (default: every entry gets SOURCE_DATE_EPOCH, else 0). */
  keepMtimes?: boolean;
  /** Host owners in `dir` → container owners (a rootless tree); default the owners on disk. */
  idMapping?: IdentityMapping;
  /**
   * `dir` was unpacked without root: use the owners recorded in
   * `user.rootlesscontainers` attributes (by `unpack`, or umoci's
   * `--rootless`), read the current user's files as 0:0 (unless `idMapping`),
   * and do not take the base's device nodes and fifos, which such an unpack
   * cannot create, for removals. Default: when not running as root.
   */
  rootlessOwners?: boolean;
  /** Creation time of the image; default SOURCE_DATE_EPOCH, else now. */
  created?: Date;
  /** Diff against this tree instead of the base image's filesystem (e.g. a snapshot's parent directory); the image is still built on `base`. */
  lower?: Tree;
  /** Stop the commit; nothing of it stays. */
  signal?: AbortSignal;
}

/** The committed image and what its new layer holds. */
export interface CommittedImage extends BuiltImage {
  /** Paths the layer adds, changes (parents of changes included, as Docker counts them) and removes. */
  counts: { added: number; changed: number; removed: number };
}

/**
 * Commit the directory `dir` as one new layer on `base`. An unchanged
 * directory still makes a layer — an empty tar (DiffID
 * `sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef`),
 * as `docker commit` of an unchanged container does — so the history
 * always has the commit's step with a layer.
 * @throws InvalidArgumentError `ERR_NOT_A_DIRECTORY` (`dir`), `ERR_UNMAPPED_ID`,
 *   `ERR_INVALID_CHANGE`, `ERR_INVALID_REFERENCE`; NotFoundError `ERR_IMAGE_NOT_FOUND` for the base
 */
export async function commitDirectory(store: Store, opts: CommitOptions): Promise<CommittedImage> {
  const lower = opts.lower ?? (opts.base !== undefined ? await imageTree(store, opts.base) : emptyTree());
  opts.signal?.throwIfAborted();
  const rootless = opts.rootlessOwners ?? process.getuid?.() !== 0;
  const changes = await diffDirectory(lower, opts.dir, {
    ...(opts.idMapping ? { idMapping: opts.idMapping } : {}),
    rootlessOwners: rootless,
    keepMissingSpecial: rootless,
    ...(opts.compareContent ? { compareContent: true } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const counts = { added: 0, changed: 0, removed: 0 };
  for (const c of changes) counts[c.kind]++;
  const layer = writeLayer(directoryTree(opts.dir), changes, {
    mtime: sourceDateEpoch() ?? 0,
    ...(opts.keepMtimes ? { keepMtimes: true } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const built = await buildImage(store, {
    ...(opts.base !== undefined ? { base: opts.base } : {}),
    layers: [trustedLayer(layer, basename(opts.dir))],
    ...(opts.changes ? { changes: opts.changes } : {}),
    ...(opts.tags ? { tags: opts.tags } : {}),
    ...(opts.message !== undefined ? { comment: opts.message } : {}),
    createdBy: opts.createdBy ?? `berth commit ${basename(opts.dir)}`,
    ...(opts.created ? { created: opts.created } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return { ...built, counts };
}
