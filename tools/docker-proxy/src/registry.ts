/**
 * The registry the pull and push scenarios talk to: a fresh docker-registry
 * (distribution 2.8, through `@berth/peers`) per run, holding the fixture
 * image `loaded` as `engine-rec/pulled:1`, uploaded here over plain HTTP with
 * the bytes of `FixtureArchives.registryImage` — neither dockerd nor berth
 * pushes it, so its manifest digest (what `docker pull` prints) is the same
 * in the recording and in every replay.
 * @module
 */
import { type RegistryPeer, registry } from "@berth/peers";
import type { FixtureArchives } from "./fixtures.js";

/** The repository and tag the registry holds the fixture image under. */
export const SEEDED_REPOSITORY = "engine-rec/pulled";
export const SEEDED_TAG = "1";

/** The registry refused an upload of the seed. */
export class SeedError extends Error {
  override name = "SeedError";
}

async function ok(res: Response, what: string): Promise<Response> {
  if (res.status >= 200 && res.status < 300) return res;
  throw new SeedError(`${what}: ${res.status} ${await res.text().catch(() => "")}`.trim());
}

/** Upload the fixture image into the registry at `url` (`http://127.0.0.1:PORT`) as `engine-rec/pulled:1`. */
export async function seedRegistry(url: string, fx: FixtureArchives): Promise<void> {
  const image = fx.registryImage;
  for (const [digest, bytes] of image.blobs) {
    const start = await ok(await fetch(`${url}/v2/${SEEDED_REPOSITORY}/blobs/uploads/`, { method: "POST" }), `upload of ${digest}`);
    await start.body?.cancel();
    const location = new URL(start.headers.get("location") ?? "", url);
    location.searchParams.set("digest", digest);
    const put = await ok(
      await fetch(location, { method: "PUT", body: new Uint8Array(bytes), headers: { "content-type": "application/octet-stream" } }),
      `upload of ${digest}`,
    );
    await put.body?.cancel();
  }
  const put = await ok(
    await fetch(`${url}/v2/${SEEDED_REPOSITORY}/manifests/${SEEDED_TAG}`, { method: "PUT", body: new Uint8Array(image.manifest), headers: { "content-type": image.mediaType } }),
    "manifest upload",
  );
  await put.body?.cancel();
}

/**
 * A new docker-registry holding the seed. The caller stops it. Undefined
 * when docker-registry is missing and peers are not required (`@berth/peers`
 * throws when they are).
 */
export async function seededRegistry(fx: FixtureArchives): Promise<RegistryPeer | undefined> {
  const reg = await registry();
  if (!reg) return undefined;
  try {
    await seedRegistry(reg.url, fx);
  } catch (err) {
    await reg.stop();
    throw err;
  }
  return reg;
}
