/**
 * The reference store: tags and digest references in the metadata journal,
 * tags mirrored into `index.json`, and Docker's lookup order in `resolve`.
 * @module
 */
import { AlreadyExistsError, AmbiguousPrefixError, type Digest, InvalidArgumentError, NotFoundError } from "@berth/digest";
import { parseReference, type Reference } from "@berth/oci";
import type { ReferenceStore, TagOptions } from "./api.js";
import type { Core } from "./core.js";
import { FULL_HEX_RE, HEX_PREFIX_RE, parseImageId, sorted } from "./ids.js";
import { imageNotFound, ImageStoreErrorCode } from "./errors.js";
import { hasIndexEntry } from "./layout.js";

/** Filesystem {@link ReferenceStore}: references in the metadata journal, tags mirrored into `index.json`. */
export class FsReferenceStore implements ReferenceStore {
  readonly #core: Core;

  /** @internal */
  constructor(core: Core) {
    this.#core = core;
  }

  async tag(refArg: string, idArg: Digest | string, opts: TagOptions = {}): Promise<{ ref: string; previous?: Digest }> {
    return (await this.tagMany([{ ref: refArg, id: idArg, ...(opts.force ? { force: true } : {}) }]))[0]!;
  }

  async tagMany(steps: ReadonlyArray<{ ref: string; id: Digest | string; force?: boolean }>): Promise<Array<{ ref: string; previous?: Digest }>> {
    const core = this.#core;
    const parsed = steps.map((s) => {
      const ref = parseReference(s.ref);
      if (ref.tag !== undefined && ref.digest !== undefined) {
        throw new InvalidArgumentError(`invalid reference ${JSON.stringify(s.ref)}: refusing to create a tag with a digest reference`, {
          code: ImageStoreErrorCode.INVALID_REFERENCE,
          details: { reference: s.ref },
        });
      }
      return { ref, id: parseImageId(s.id), force: s.force === true };
    });
    return core.locked(async () => {
      // every step checked against the state as the steps before it leave it, before anything is written
      const now = new Map<string, Digest | undefined>();
      const out: Array<{ ref: string; previous?: Digest }> = [];
      const ops: Array<["t", string, Digest]> = [];
      for (const { ref, id, force } of parsed) {
        core.record(id);
        const old = now.has(ref.string) ? now.get(ref.string) : core.state.refs.get(ref.string);
        if (old === id) {
          out.push({ ref: ref.string });
          continue;
        }
        if (old !== undefined) {
          if (ref.digest !== undefined) {
            throw new AlreadyExistsError(`cannot overwrite digest reference ${ref.string}: it points at image ${old}`, {
              code: ImageStoreErrorCode.TAG_CONFLICT,
              details: { ref: ref.string, existing: old, id },
            });
          }
          if (!force) {
            throw new AlreadyExistsError(
              `conflict: tag ${ref.familiar} is already set to image ${old}; use force to move it to ${id}`,
              { code: ImageStoreErrorCode.TAG_CONFLICT, details: { ref: ref.string, existing: old, id } },
            );
          }
        }
        now.set(ref.string, id);
        ops.push(["t", ref.string, id]);
        out.push(old === undefined ? { ref: ref.string } : { ref: ref.string, previous: old });
      }
      if (ops.length === 0) return out;
      await core.append(ops);
      if (ops.some(([, r]) => hasIndexEntry(r))) await core.writeIndex();
      return out;
    });
  }

  async untag(refArg: string): Promise<Digest> {
    const core = this.#core;
    const ref = parseReference(refArg);
    return core.locked(async () => {
      const id = core.state.refs.get(ref.string);
      if (id === undefined) {
        throw new NotFoundError(`no such reference: ${ref.familiar}`, {
          code: ImageStoreErrorCode.REFERENCE_NOT_FOUND,
          details: { ref: ref.string },
        });
      }
      await core.append([["r", ref.string]]);
      if (hasIndexEntry(ref.string)) await core.writeIndex();
      return id;
    });
  }

  async resolve(input: string): Promise<Digest> {
    const id = this.#find(input);
    if (id === undefined) throw imageNotFound(input);
    return id;
  }

  async find(input: string): Promise<Digest | undefined> {
    return this.#find(input);
  }

  /** {@link resolve}, with undefined where it would throw `ERR_IMAGE_NOT_FOUND`. */
  #find(input: string): Digest | undefined {
    const core = this.#core;
    if (typeof input !== "string" || input.length === 0) {
      throw new InvalidArgumentError(`invalid reference ${JSON.stringify(input)}: empty`, { code: ImageStoreErrorCode.INVALID_REFERENCE });
    }
    core.refresh();
    const state = core.state;
    if (FULL_HEX_RE.test(input) || /^sha256:[a-f0-9]{64}$/.test(input)) {
      const id = parseImageId(input);
      return state.images.has(id) ? id : undefined;
    }
    let ref: Reference | undefined;
    let refError: unknown;
    try {
      ref = parseReference(input);
    } catch (err) {
      refError = err;
    }
    if (ref) {
      const id = state.refs.get(ref.string);
      if (id !== undefined) return id;
      if (ref.digest !== undefined) {
        // name@<manifest digest or image ID> of an image that carries that name.
        const candidate = state.byManifest.get(ref.digest) ?? (state.images.has(ref.digest) ? ref.digest : undefined);
        if (candidate !== undefined) {
          for (const r of state.refsById.get(candidate) ?? []) {
            if (r.startsWith(`${ref.name}:`) || r.startsWith(`${ref.name}@`)) return candidate;
          }
        }
      }
    }
    if (HEX_PREFIX_RE.test(input)) {
      try {
        return state.ids.lookup(input);
      } catch (err) {
        if (err instanceof AmbiguousPrefixError) {
          throw new AmbiguousPrefixError(`image ID prefix ${JSON.stringify(input)} matches more than one image`, {
            details: { prefix: input },
          });
        }
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    if (!ref) throw refError;
    return undefined;
  }

  async referencesOf(idArg: Digest | string): Promise<string[]> {
    const id = parseImageId(idArg);
    this.#core.refresh();
    this.#core.record(id);
    return sorted(this.#core.state.refsById.get(id) ?? []);
  }

  async list(): Promise<Array<{ ref: string; id: Digest }>> {
    this.#core.refresh();
    return sorted(this.#core.state.refs.keys()).map((ref) => ({ ref, id: this.#core.state.refs.get(ref)! }));
  }
}
