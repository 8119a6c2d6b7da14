/**
 * Pins: named, crash-safe records by which other components (the registry
 * face of `berth serve`) keep blobs that no image references — manifests kept
 * byte for byte, indexes, artifacts, blobs pushed but not yet referenced.
 * Each record is one file `<root>/pins/<name>.json` holding `{ "blobs": [...],
 * "data": ... }`, written whole (temp + fsync + rename + directory fsync), so
 * a record and the blobs it keeps change together. GC and fsck treat every
 * pinned digest as a root; what `data` says is the owner's business.
 * @module
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { DataIntegrityError, type Digest, InvalidArgumentError, parseDigest } from "@berth/digest";
import { TEMP_SUFFIX, writeFileAtomic } from "@berth/layer-store";
import { ImageStoreErrorCode } from "./errors.js";

/** Directory of the pin records under the store root. */
export const PINS_DIR = "pins";

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/** One pin record: the blobs it keeps, and its owner's data. */
export interface PinRecord<T = unknown> {
  blobs: Digest[];
  data?: T;
}

/** Named pin records (see the module doc). */
export interface PinStore {
  /** Names of the records, sorted; only those starting with `prefix` when given. */
  list(prefix?: string): Promise<string[]>;
  /** A record, or undefined. @throws DataIntegrityError `ERR_METADATA_CORRUPT` for an unreadable one */
  read<T = unknown>(name: string): Promise<PinRecord<T> | undefined>;
  /** Replace (or create) a record atomically. @throws InvalidArgumentError `ERR_INVALID_PIN` for a bad name */
  write<T = unknown>(name: string, record: PinRecord<T>): Promise<void>;
  /** Remove a record (idempotent). */
  remove(name: string): Promise<void>;
  /** Every digest every record pins (GC and fsck roots). */
  blobs(): Promise<Set<Digest>>;
}

function checkName(name: string): string {
  if (typeof name !== "string" || !NAME_RE.test(name)) {
    throw new InvalidArgumentError(`invalid pin name ${JSON.stringify(name)}`, { code: ImageStoreErrorCode.INVALID_PIN, details: { name } });
  }
  return name;
}

function parseRecord(name: string, text: string): PinRecord {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new DataIntegrityError(`pin ${name}: not JSON`, { code: ImageStoreErrorCode.METADATA_CORRUPT, cause });
  }
  const blobs = (doc as { blobs?: unknown })?.blobs;
  if (!Array.isArray(blobs)) throw new DataIntegrityError(`pin ${name}: no blobs list`, { code: ImageStoreErrorCode.METADATA_CORRUPT });
  return { blobs: blobs.map((d) => parseDigest(String(d))), data: (doc as { data?: unknown }).data };
}

/** Pin records on disk under `<root>/pins/`. */
export class FsPinStore implements PinStore {
  readonly #dir: string;
  constructor(root: string) {
    this.#dir = path.join(root, PINS_DIR);
  }

  async list(prefix = ""): Promise<string[]> {
    const names = await fsp.readdir(this.#dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return [] as string[];
      throw err;
    });
    return names
      .filter((n) => n.endsWith(".json") && !n.includes(TEMP_SUFFIX))
      .map((n) => n.slice(0, -".json".length))
      .filter((n) => NAME_RE.test(n) && n.startsWith(prefix))
      .sort();
  }

  async read<T = unknown>(name: string): Promise<PinRecord<T> | undefined> {
    const file = path.join(this.#dir, `${checkName(name)}.json`);
    const text = await fsp.readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined;
      throw err;
    });
    return text === undefined ? undefined : (parseRecord(name, text) as PinRecord<T>);
  }

  async write<T = unknown>(name: string, record: PinRecord<T>): Promise<void> {
    const file = path.join(this.#dir, `${checkName(name)}.json`);
    await fsp.mkdir(this.#dir, { recursive: true });
    await writeFileAtomic(file, JSON.stringify({ blobs: [...new Set(record.blobs)].sort(), data: record.data }));
  }

  async remove(name: string): Promise<void> {
    await fsp.rm(path.join(this.#dir, `${checkName(name)}.json`), { force: true });
  }

  async blobs(): Promise<Set<Digest>> {
    const out = new Set<Digest>();
    for (const name of await this.list()) for (const d of (await this.read(name))?.blobs ?? []) out.add(d);
    return out;
  }
}

/** Pin records in memory (the memory store's). */
export class MemoryPinStore implements PinStore {
  readonly #records = new Map<string, string>();
  async list(prefix = ""): Promise<string[]> {
    return [...this.#records.keys()].filter((n) => n.startsWith(prefix)).sort();
  }
  async read<T = unknown>(name: string): Promise<PinRecord<T> | undefined> {
    const text = this.#records.get(checkName(name));
    return text === undefined ? undefined : (parseRecord(name, text) as PinRecord<T>);
  }
  async write<T = unknown>(name: string, record: PinRecord<T>): Promise<void> {
    this.#records.set(checkName(name), JSON.stringify({ blobs: [...new Set(record.blobs)].sort(), data: record.data }));
  }
  async remove(name: string): Promise<void> {
    this.#records.delete(checkName(name));
  }
  async blobs(): Promise<Set<Digest>> {
    const out = new Set<Digest>();
    for (const name of await this.list()) for (const d of (await this.read(name))?.blobs ?? []) out.add(d);
    return out;
  }
}
