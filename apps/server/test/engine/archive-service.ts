/**
 * The Engine face's service over a real store (`@berth/image-service` behind
 * `engineService`), for tests that start the face on their own servers.
 */
import { openImageService } from "@berth/image-service";
import type { EngineImageService } from "../../src/engine/index.js";
import { engineService } from "../../src/engine/index.js";

export async function archiveService(root: string): Promise<{ service: EngineImageService; close(): Promise<void> }> {
  const svc = await openImageService({ root });
  return { service: engineService(svc), close: () => svc.close() };
}
