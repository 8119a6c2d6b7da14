import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { sha256 } from "@berth/digest";
import { openStore } from "@berth/image-store";
import * as tarStream from "tar-stream";
import { ArchiveEntries, type Entry } from "../src/entries.js";
import type { ArchiveStore } from "../src/index.js";

/** A tar built with tar-stream (an implementation independent of ours). */
export async function tarOf(entries: Array<{ name: string; body?: string | Uint8Array; type?: "file" | "symlink" | "link" | "directory"; linkname?: string }>): Promise<Uint8Array> {
  const p = tarStream.pack();
  for (const e of entries) {
    const body = e.body === undefined ? undefined : typeof e.body === "string" ? Buffer.from(e.body) : Buffer.from(e.body);
    if (e.type && e.type !== "file") p.entry({ name: e.name, type: e.type, ...(e.linkname ? { linkname: e.linkname } : {}) });
    else p.entry({ name: e.name, mtime: new Date(0) }, body ?? Buffer.alloc(0));
  }
  p.finalize();
  const parts: Buffer[] = [];
  for await (const c of p) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A layer tar holding `files` (name → content). */
export function layerTar(files: Record<string, string | Uint8Array>): Promise<Uint8Array> {
  return tarOf(Object.entries(files).map(([name, body]) => ({ name, body })));
}

export interface TestImage {
  config: Uint8Array;
  id: string;
  layers: Uint8Array[];
  diffIDs: string[];
}

/** An image config over `layers` (blobs as given: plain or gzip'd); DiffIDs from the uncompressed tars. */
export function imageOf(uncompressed: Uint8Array[], opts: { gzip?: boolean; zstd?: boolean; label?: string } = {}): TestImage {
  const diffIDs = uncompressed.map((l) => sha256(l));
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Env: ["PATH=/bin"], Labels: { test: opts.label ?? "x" } },
      rootfs: { type: "layers", diff_ids: diffIDs },
      history: uncompressed.map((_, i) => ({ created: "2001-09-09T01:46:40Z", created_by: `step ${i}` })),
    }),
  );
  const layers = opts.gzip
    ? uncompressed.map((l) => new Uint8Array(gzipSync(l)))
    : opts.zstd
      ? uncompressed.map((l) => new Uint8Array(execFileSync("zstd", ["-q", "-c"], { input: l })))
      : uncompressed;
  return { config, id: sha256(config), layers, diffIDs };
}

/** Entries of a legacy docker-save archive for `images` (layers at `<hex>/layer.tar`). */
export function legacyEntries(images: Array<{ img: TestImage; tags: string[] | null }>) {
  const entries: Array<{ name: string; body: Uint8Array | string }> = [];
  const manifest: unknown[] = [];
  const seen = new Set<string>();
  for (const { img, tags } of images) {
    const layers: string[] = [];
    for (const l of img.layers) {
      const dir = sha256(l).slice(7);
      if (!seen.has(dir)) {
        entries.push({ name: `${dir}/layer.tar`, body: l }, { name: `${dir}/VERSION`, body: "1.0" });
        seen.add(dir);
      }
      layers.push(`${dir}/layer.tar`);
    }
    entries.push({ name: `${img.id.slice(7)}.json`, body: img.config });
    manifest.push({ Config: `${img.id.slice(7)}.json`, RepoTags: tags, Layers: layers });
  }
  entries.push({ name: "manifest.json", body: JSON.stringify(manifest) });
  return entries;
}

/** Entries of an OCI layout archive for one image with the given ref name. */
export function ociEntries(img: TestImage, refName?: string) {
  const entries: Array<{ name: string; body: Uint8Array | string }> = [];
  const blob = (b: Uint8Array) => entries.push({ name: `blobs/sha256/${sha256(b).slice(7)}`, body: b });
  blob(img.config);
  for (const l of img.layers) blob(l);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: img.id, size: img.config.length },
      layers: img.layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(l), size: l.length })),
    }),
  );
  blob(manifest);
  entries.push({ name: "oci-layout", body: '{"imageLayoutVersion":"1.0.0"}' });
  entries.push({
    name: "index.json",
    body: JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: sha256(manifest),
          size: manifest.length,
          ...(refName ? { annotations: { "org.opencontainers.image.ref.name": refName } } : {}),
        },
      ],
    }),
  });
  return { entries, manifestDigest: sha256(manifest) };
}

/** A fresh store in a temp dir; `cleanup()` removes it. */
export async function tempStore(): Promise<{ store: ArchiveStore & { close(): Promise<void>; images: { len(): Promise<number> }; references: { list(): Promise<Array<{ ref: string; id: string }>> } }; root: string; cleanup(): Promise<void> }> {
  const root = mkdtempSync(join(tmpdir(), "berth-archive-"));
  const store = await openStore({ root });
  return {
    store: store as never,
    root,
    async cleanup() {
      await store.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Text as UTF-8 bytes (bytes as they are). */
export const enc = (s: string | Uint8Array) => (typeof s === "string" ? new TextEncoder().encode(s) : s);

/** The entries a read of an archive with these files (and symlinks: name → target) would give, all in memory. */
export function archiveOf(files: Array<{ name: string; body: string | Uint8Array }>, links: Record<string, string> = {}): ArchiveEntries {
  const entries = new Map<string, Entry>();
  for (const { name, body } of files) {
    const bytes = enc(body);
    entries.set(name, { kind: "file", name, size: bytes.length, digest: sha256(bytes), bytes, stored: false });
  }
  for (const [name, target] of Object.entries(links)) entries.set(name, { kind: "link", name, rawTarget: target, target });
  return new ArchiveEntries(entries, { maxJson: 1 << 20 });
}

/**
 * An OCI layout whose index.json names an index that lists its child index
 * `fanOut` times, `levels` deep (the innermost index lists `leaf`, default
 * nothing): a few kB that stand for `fanOut ** levels` descriptors.
 */
export function indexBomb(levels: number, fanOut: number, leaf: Array<Record<string, unknown>> = []) {
  const IDX = "application/vnd.oci.image.index.v1+json";
  const entries: Array<{ name: string; body: Uint8Array | string }> = [{ name: "oci-layout", body: '{"imageLayoutVersion":"1.0.0"}' }];
  let child = enc(JSON.stringify({ schemaVersion: 2, mediaType: IDX, manifests: leaf }));
  entries.push({ name: `blobs/sha256/${sha256(child).slice(7)}`, body: child });
  for (let i = 0; i < levels; i++) {
    const d = { mediaType: IDX, digest: sha256(child), size: child.length };
    child = enc(JSON.stringify({ schemaVersion: 2, mediaType: IDX, manifests: Array(fanOut).fill(d) }));
    entries.push({ name: `blobs/sha256/${sha256(child).slice(7)}`, body: child });
  }
  const top = { mediaType: IDX, digest: sha256(child), size: child.length, annotations: { "org.opencontainers.image.ref.name": "bomb:1" } };
  entries.push({ name: "index.json", body: JSON.stringify({ schemaVersion: 2, manifests: [top] }) });
  return entries;
}
