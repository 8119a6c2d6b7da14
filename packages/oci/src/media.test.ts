import { describe, expect, it } from "vitest";
import { isMediaType, layerCompression, layerMediaType, MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_TYPE_OCI_LAYER, MEDIA_TYPES } from "./media.js";

describe("layer media types", () => {
  it("a requested type that agrees with the bytes is kept, one that lies is corrected", () => {
    expect(layerMediaType("gzip", MEDIA_TYPE_DOCKER_LAYER_GZIP)).toBe(MEDIA_TYPE_DOCKER_LAYER_GZIP);
    expect(layerMediaType("none", "application/vnd.oci.image.layer.v1.tar+gzip")).toBe(MEDIA_TYPE_OCI_LAYER);
    expect(layerMediaType("zstd")).toBe(MEDIA_TYPES.zstd);
    expect(layerMediaType("none", "application/x-custom")).toBe("application/x-custom");
  });
  it("refuses what is not a media type", () => {
    for (const bad of ["", "a b", 'x"y', "x".repeat(256)]) {
      expect(() => layerMediaType("none", bad)).toThrow(expect.objectContaining({ code: "ERR_INVALID_MEDIA_TYPE" }));
      expect(isMediaType(bad)).toBe(false);
    }
  });
  it("layerCompression reads the compression a type announces", () => {
    expect(layerCompression("application/vnd.oci.image.layer.v1.tar+zstd")).toBe("zstd");
    expect(layerCompression(MEDIA_TYPE_DOCKER_LAYER_GZIP)).toBe("gzip");
    expect(layerCompression("application/vnd.oci.image.config.v1+json")).toBeUndefined();
  });
});
