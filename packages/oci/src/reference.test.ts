import { describe, expect, it } from "vitest";
import {
  familiarReference,
  isImageIdLike,
  isValidOciRefName,
  isValidTag,
  normalizeReference,
  parseReference,
  parseReferenceStrict,
} from "./reference.js";

const HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const DIG = `sha256:${HEX}`;

// [input, normalised, familiar, domain, path, tag, digest]
const valid: Array<[string, string, string, string, string, string | undefined, string | undefined]> = [
  ["ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest", "docker.io", "library/ubuntu", "latest", undefined],
  ["ubuntu:22.04", "docker.io/library/ubuntu:22.04", "ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", undefined],
  ["library/ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest", "docker.io", "library/ubuntu", "latest", undefined],
  ["docker.io/ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest", "docker.io", "library/ubuntu", "latest", undefined],
  ["index.docker.io/ubuntu:1", "docker.io/library/ubuntu:1", "ubuntu:1", "docker.io", "library/ubuntu", "1", undefined],
  ["docker.io/library/ubuntu:latest", "docker.io/library/ubuntu:latest", "ubuntu:latest", "docker.io", "library/ubuntu", "latest", undefined],
  ["user/app:1", "docker.io/user/app:1", "user/app:1", "docker.io", "user/app", "1", undefined],
  ["user/sub/app", "docker.io/user/sub/app:latest", "user/sub/app:latest", "docker.io", "user/sub/app", "latest", undefined],
  ["docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest", "docker.io", "library/a/b", "latest", undefined],
  ["host:5000/x/y:t", "host:5000/x/y:t", "host:5000/x/y:t", "host:5000", "x/y", "t", undefined],
  ["localhost/x", "localhost/x:latest", "localhost/x:latest", "localhost", "x", "latest", undefined],
  ["localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest", "localhost:5000", "x", "latest", undefined],
  ["example.com/a/b/c:v1.2-rc_3", "example.com/a/b/c:v1.2-rc_3", "example.com/a/b/c:v1.2-rc_3", "example.com", "a/b/c", "v1.2-rc_3", undefined],
  ["127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1", "127.0.0.1:5000", "x", "1", undefined],
  ["[::1]:5000/x:1", "[::1]:5000/x:1", "[::1]:5000/x:1", "[::1]:5000", "x", "1", undefined],
  ["Example.COM/x", "Example.COM/x:latest", "Example.COM/x:latest", "Example.COM", "x", "latest", undefined],
  ["Foo/bar", "Foo/bar:latest", "Foo/bar:latest", "Foo", "bar", "latest", undefined],
  [`ubuntu@${DIG}`, `docker.io/library/ubuntu@${DIG}`, `ubuntu@${DIG}`, "docker.io", "library/ubuntu", undefined, DIG],
  [`ubuntu:22.04@${DIG}`, `docker.io/library/ubuntu:22.04@${DIG}`, `ubuntu:22.04@${DIG}`, "docker.io", "library/ubuntu", "22.04", DIG],
  [`host:5000/x@${DIG}`, `host:5000/x@${DIG}`, `host:5000/x@${DIG}`, "host:5000", "x", undefined, DIG],
  ["a-b__c/f--g.h_i", "docker.io/a-b__c/f--g.h_i:latest", "a-b__c/f--g.h_i:latest", "docker.io", "a-b__c/f--g.h_i", "latest", undefined],
  ["x:_", "docker.io/library/x:_", "x:_", "docker.io", "library/x", "_", undefined],
  ["x:UPPER", "docker.io/library/x:UPPER", "x:UPPER", "docker.io", "library/x", "UPPER", undefined],
  [`x:${"a".repeat(128)}`, `docker.io/library/x:${"a".repeat(128)}`, `x:${"a".repeat(128)}`, "docker.io", "library/x", "a".repeat(128), undefined],
  ["abc123", "docker.io/library/abc123:latest", "abc123:latest", "docker.io", "library/abc123", "latest", undefined],
  [HEX.slice(0, 63), `docker.io/library/${HEX.slice(0, 63)}:latest`, `${HEX.slice(0, 63)}:latest`, "docker.io", `library/${HEX.slice(0, 63)}`, "latest", undefined],
  ["berth-test/busybox:1", "docker.io/berth-test/busybox:1", "berth-test/busybox:1", "docker.io", "berth-test/busybox", "1", undefined],
];

const invalidRefs: Array<[string, RegExp]> = [
  ["", /at least one component/],
  [HEX, /64-byte hexadecimal/],
  ["UBUNTU", /must be lowercase/],
  ["foo/Bar", /must be lowercase/],
  ["docker.io/Library/x", /must be lowercase/],
  ["x:-bad", /tag/],
  ["x:.bad", /tag/],
  [`x:${"a".repeat(129)}`, /tag/],
  ["x:a+b", /tag/],
  ["x::y", /tag/],
  ["a_b.c/x", /invalid reference format/],
  ["-x", /invalid reference format/],
  ["x-", /invalid reference format/],
  ["x/", /invalid reference format/],
  ["/x", /invalid reference format/],
  ["a//b", /invalid reference format/],
  ["a___b", /invalid reference format/],
  ["a..b", /invalid reference format/],
  ["../etc/passwd", /invalid reference format/],
  ["x y", /invalid reference format/],
  ["x@sha256:abc", /invalid reference format/],
  [`x@sha256:${"z".repeat(64)}`, /invalid reference format/],
  [`x@sha256:${HEX}0`, /bad digest/],
  [`x@md5:${HEX}`, /bad digest/],
  ["host:port/x", /invalid reference format/],
  [`${"a".repeat(250)}/bbbbbbb`, /more than 255/],
  ["x:latest:latest", /./],
  ["x@", /./],
];

describe("parseReference", () => {
  it.each(valid)("%s", (input, normalized, familiar, domain, path, tag, digest) => {
    const r = parseReference(input);
    expect(r.string).toBe(normalized);
    expect(r.familiar).toBe(familiar);
    expect(r.domain).toBe(domain);
    expect(r.path).toBe(path);
    expect(r.name).toBe(`${domain}/${path}`);
    expect(r.tag).toBe(tag);
    expect(r.digest).toBe(digest);
    // Normalising is idempotent.
    expect(parseReference(r.string).string).toBe(normalized);
    expect(parseReference(r.familiar).string).toBe(normalized);
  });

  it.each(invalidRefs)("rejects %j", (input, message) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeDefined();
    expect((err as { code: string }).code).toBe("ERR_INVALID_REFERENCE");
    expect((err as Error).name).toBe("InvalidArgumentError");
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain("invalid reference");
  });

  it("adds no default tag when asked not to", () => {
    expect(parseReference("ubuntu", { defaultTag: false }).string).toBe("docker.io/library/ubuntu");
    expect(parseReference("ubuntu", { defaultTag: false }).tag).toBeUndefined();
    expect(normalizeReference("ubuntu", { defaultTag: false })).toBe("docker.io/library/ubuntu");
  });

  it("gives familiar names", () => {
    expect(familiarReference("docker.io/library/busybox:1")).toBe("busybox:1");
    expect(familiarReference("docker.io/berth-test/busybox:1")).toBe("berth-test/busybox:1");
    expect(parseReference("localhost:5000/x").familiarName).toBe("localhost:5000/x");
    expect(parseReference("ubuntu").familiarName).toBe("ubuntu");
  });

  it("rejects non-strings", () => {
    expect(() => parseReference(42 as unknown as string)).toThrow(/expected a string/);
  });
});

describe("parseReferenceStrict", () => {
  it("does not normalise", () => {
    expect(parseReferenceStrict("ubuntu")).toEqual({ name: "ubuntu" });
    expect(parseReferenceStrict("a/b:1")).toEqual({ name: "a/b", tag: "1" });
    expect(parseReferenceStrict(`a@${DIG}`)).toEqual({ name: "a", digest: DIG });
    expect(() => parseReferenceStrict("A")).toThrow(/lowercase/);
    expect(() => parseReferenceStrict("a:-")).toThrow(/invalid reference format/);
  });
});

describe("helpers", () => {
  it("tags", () => {
    expect(isValidTag("latest")).toBe(true);
    expect(isValidTag("_x.y-Z")).toBe(true);
    expect(isValidTag("-x")).toBe(false);
    expect(isValidTag("")).toBe(false);
    expect(isValidTag("a".repeat(129))).toBe(false);
  });
  it("ID-like strings", () => {
    expect(isImageIdLike(HEX)).toBe(true);
    expect(isImageIdLike(DIG)).toBe(true);
    expect(isImageIdLike("sha256:abc")).toBe(true);
    expect(isImageIdLike("abc")).toBe(false);
    expect(isImageIdLike("ubuntu")).toBe(false);
  });
  it("OCI ref names (skopeo/umoci grammar)", () => {
    expect(isValidOciRefName("docker.io/library/busybox:1")).toBe(true);
    expect(isValidOciRefName("localhost:5000/x/y:t")).toBe(true);
    expect(isValidOciRefName(`docker.io/library/x@${DIG}`)).toBe(true);
    expect(isValidOciRefName("1")).toBe(true);
    expect(isValidOciRefName("docker.io/library/a__b:1")).toBe(false);
    expect(isValidOciRefName("docker.io/library/x:_y")).toBe(false);
    expect(isValidOciRefName("")).toBe(false);
  });
});
