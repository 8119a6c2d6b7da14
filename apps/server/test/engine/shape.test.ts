/**
 * Response shapes field by field against dockerd's recorded answers (API
 * 1.41, what both docker clients negotiated with dockerd 20.10): each
 * recorded body is turned into the image service's terms, shaped again by
 * the face, and must come out equal — then the same data at the versions
 * whose changes the README lists.
 */
import { describe, expect, it } from "vitest";
import { progressBar } from "../../src/engine/archive.js";
import type { DeleteItem, HistoryItem, ImageInspect, ImageSummary } from "../../src/engine/index.js";
import { parseFilters } from "../../src/engine/index.js";
import { deleteItems, diskUsage, historyItems, imageInspect, imageSummary, pruneReport } from "../../src/engine/shape.js";
import { recording } from "./helpers.js";

type Json = Record<string, unknown>;

/** The JSON body of the versioned (last) exchange of a scenario's first run. */
async function body(name: string, run = 0): Promise<unknown> {
  const rec = await recording(name);
  const ex = rec.runs[run]!.exchanges.at(-1)!;
  expect(ex.path).toMatch(/^\/v1\.41\//);
  if (ex.responseBody.kind === "json") return ex.responseBody.value;
  if (ex.responseBody.kind === "json-stream") return ex.responseBody.messages;
  throw new Error(`${name}: no JSON body`);
}

const listOrEmpty = (v: unknown, none: string) => ((v as string[] | null) ?? []).filter((s) => s !== none);

/** A recorded `image.Summary` in the service's terms. */
function toSummary(r: Json): ImageSummary {
  return {
    id: r.Id as ImageSummary["id"],
    ...(r.ParentId ? { parentId: r.ParentId as ImageSummary["id"] } : {}),
    repoTags: listOrEmpty(r.RepoTags, "<none>:<none>"),
    repoDigests: listOrEmpty(r.RepoDigests, "<none>@<none>"),
    created: r.Created as number,
    size: r.Size as number,
    ...((r.SharedSize as number) >= 0 ? { sharedSize: r.SharedSize as number } : {}),
    labels: r.Labels as Record<string, string> | null,
  };
}

/** A recorded inspect body in the service's terms. */
function toInspect(r: Json): ImageInspect {
  const created = r.Created as string;
  return {
    id: r.Id as ImageInspect["id"],
    repoTags: r.RepoTags as string[],
    repoDigests: r.RepoDigests as string[],
    parent: r.Parent as string,
    comment: r.Comment as string,
    ...(created !== "0001-01-01T00:00:00Z" ? { created } : {}),
    container: r.Container as string,
    // dockerd fills an absent container_config with zero fields; the fixtures have none
    containerConfig: null,
    dockerVersion: r.DockerVersion as string,
    author: r.Author as string,
    // the fixtures' configs hold Env, Cmd, Labels, WorkingDir; dockerd adds the zero fields
    config: Object.fromEntries(Object.entries(r.Config as Json).filter(([k]) => ["Env", "Cmd", "Labels", "WorkingDir"].includes(k))),
    architecture: r.Architecture as string,
    os: r.Os as string,
    size: r.Size as number,
    layers: (r.RootFS as { Layers: ImageInspect["layers"] }).Layers,
  };
}

describe("GET /images/json", () => {
  it.each(["images", "images-all", "images-filter-dangling", "images-filter-label"])("%s: every item equal at 1.41", async (name) => {
    const items = (await body(name)) as Json[];
    expect(items.length).toBeGreaterThan(0);
    for (const item of items) expect(imageSummary("1.41", toSummary(item))).toEqual(item);
  });

  it("the fields of later versions", async () => {
    const items = (await body("images-all")) as Json[];
    const untagged = items.find((i) => (i.RepoTags as string[])[0] === "<none>:<none>")!;
    const s = toSummary(untagged);
    expect(imageSummary("1.43", s)).toMatchObject({ RepoTags: [], RepoDigests: [], VirtualSize: s.size });
    expect(imageSummary("1.44", s)).not.toHaveProperty("VirtualSize");
    expect(imageSummary("1.50", s).Containers).toBe(-1);
    expect(imageSummary("1.51", s).Containers).toBe(0);
    const descriptor = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: s.id, size: 400 };
    expect(imageSummary("1.47", { ...s, descriptor })).not.toHaveProperty("Descriptor");
    expect(imageSummary("1.48", { ...s, descriptor }).Descriptor).toEqual(descriptor);
    const manifests = [{ digest: s.id, mediaType: descriptor.mediaType, size: 400, kind: "image" as const, available: true, contentSize: 900, platform: { os: "linux", architecture: "amd64" }, unpackedSize: 582 }];
    expect(imageSummary("1.46", { ...s, manifests })).not.toHaveProperty("Manifests");
    expect(imageSummary("1.47", { ...s, manifests }).Manifests).toEqual([
      {
        ID: s.id,
        Descriptor: { mediaType: descriptor.mediaType, digest: s.id, size: 400 },
        Available: true,
        Size: { Content: 900, Total: 900 },
        Kind: "image",
        ImageData: { Platform: { os: "linux", architecture: "amd64" }, Size: { Unpacked: 582 }, Containers: [] },
      },
    ]);
  });

  it("filters in both JSON encodings mean the same", async () => {
    const rec = await recording("images-filter-label");
    const sent = rec.runs.map((r) => r.exchanges.at(-1)!.query.filters as string);
    expect(sent.every((f) => f.includes('"label":{'))).toBe(true);
    for (const f of sent) expect(parseFilters(f)).toEqual(parseFilters('{"label":["org.example.engine=app"]}'));
    expect(parseFilters('{"dangling":{"true":true},"label":{"a":true,"b=c":true}}')).toEqual({ dangling: ["true"], label: ["a", "b=c"] });
    expect(parseFilters("")).toEqual({});
    for (const bad of ["{bad", "[]", '{"a":"b"}', '{"a":[1]}', '{"a":{"b":1}}']) expect(() => parseFilters(bad), bad).toThrow(expect.objectContaining({ code: "ERR_ENGINE_INVALID_FILTERS" }));
  });
});

describe("GET /images/{name}/json", () => {
  it.each(["image-inspect", "image-inspect-host-name", "image-inspect-short-id", "image-inspect-prefix", "image-inspect-full-id"])(
    "%s: every field equal at 1.41 but GraphDriver's name",
    async (name) => {
      for (const run of [0, 1]) {
        const rec = (await body(name, run)) as Json;
        const got = imageInspect("1.41", toInspect(rec!));
        expect(got).toEqual({ ...rec, GraphDriver: { Data: null, Name: "berth" } });
        expect((rec!.GraphDriver as Json).Name).toBe("vfs");
      }
    },
  );

  it("the fields of later versions", async () => {
    const rec = (await body("image-inspect")) as Json;
    const d = toInspect(rec!);
    expect(imageInspect("1.43", d)).toHaveProperty("VirtualSize");
    expect(imageInspect("1.44", d)).not.toHaveProperty("VirtualSize");
    expect(imageInspect("1.44", { ...d, created: undefined })).not.toHaveProperty("Created");
    expect(imageInspect("1.43", { ...d, created: undefined }).Created).toBe("0001-01-01T00:00:00Z");
    expect(imageInspect("1.44", d)).toHaveProperty("ContainerConfig");
    expect(imageInspect("1.45", d)).not.toHaveProperty("ContainerConfig");
    expect(imageInspect("1.45", d)).not.toHaveProperty("Container");
    expect(imageInspect("1.49", d).Config).toHaveProperty("Hostname", "");
    expect(imageInspect("1.50", d).Config).not.toHaveProperty("Hostname");
    expect(imageInspect("1.51", d).Config).toHaveProperty("Entrypoint", null);
    expect(imageInspect("1.52", d).Config).toEqual(d.config);
    const v152 = imageInspect("1.52", d);
    expect(v152.Parent).toBe(d.parent);
    for (const k of ["Comment", "DockerVersion", "Author", "GraphDriver"]) expect(v152, k).not.toHaveProperty(k);
    expect(imageInspect("1.52", { ...d, parent: "" })).not.toHaveProperty("Parent");
  });
});

describe("the other bodies", () => {
  it("history: equal at 1.41, Tags null when none", async () => {
    for (const name of ["history", "history-no-trunc"]) {
      const rec = (await body(name)) as Json[];
      const items: HistoryItem[] = rec.map((h) => ({
        id: h.Id as string,
        created: h.Created as number,
        createdBy: h.CreatedBy as string,
        tags: (h.Tags as string[] | null) ?? [],
        size: h.Size as number,
        comment: h.Comment as string,
      }));
      expect(historyItems(items)).toEqual(rec);
    }
  });

  it("delete: Untagged and Deleted lines in order", async () => {
    const rec = (await body("rmi-app-prunes-parent")) as Json[];
    const items = rec.map((i): DeleteItem => ("Untagged" in i ? { untagged: i.Untagged as string } : { deleted: i.Deleted as never }));
    expect(deleteItems(items)).toEqual(rec);
  });

  it("prune: ImagesDeleted null when nothing went, the list otherwise", async () => {
    expect(pruneReport({ deleted: [], spaceReclaimed: 0 })).toEqual(await body("image-prune-nothing"));
    const rec = (await body("image-prune")) as { ImagesDeleted: Json[]; SpaceReclaimed: number };
    const deleted = rec.ImagesDeleted.map((i): DeleteItem => ("Untagged" in i ? { untagged: i.Untagged as string } : { deleted: i.Deleted as never }));
    expect(pruneReport({ deleted, spaceReclaimed: rec.SpaceReclaimed })).toEqual(rec);
  });

  it("system df: the legacy fields at 1.41 (items as dockerd's), the usage objects from 1.52", async () => {
    const rec = (await body("system-df")) as Json;
    const images = (rec.Images as Json[]).map(toSummary);
    const all = { images: true, containers: true, volumes: true, buildCache: true };
    const du = { layersSize: rec.LayersSize as number, images, reclaimable: rec.LayersSize as number };
    const got = diskUsage("1.41", du, all, false);
    expect(got.LayersSize).toBe(rec.LayersSize);
    expect(got.Images).toEqual(rec.Images);
    expect(got.Containers).toEqual(rec.Containers);
    expect(got.Volumes).toEqual(rec.Volumes);
    // dockerd 20.10 wrote BuildCache null and the BuilderSize removed in 1.42; current dockerd writes [] and no BuilderSize
    expect([rec.BuildCache, rec.BuilderSize, got.BuildCache]).toEqual([null, 0, []]);
    const v152 = diskUsage("1.52", du, all, false);
    expect(v152).toMatchObject({ LayersSize: du.layersSize, ImageUsage: { TotalCount: images.length, TotalSize: du.layersSize, ActiveCount: 0 } });
    expect(v152.ImageUsage).not.toHaveProperty("Items");
    const verbose = diskUsage("1.52", du, all, true);
    expect(verbose).not.toHaveProperty("LayersSize");
    expect((verbose.ImageUsage as Json).Items).toHaveLength(images.length);
    expect(diskUsage("1.52", du, { images: true, containers: false, volumes: false, buildCache: false }, true)).toEqual({ ImageUsage: verbose.ImageUsage });
  });

  it("load progress text equals dockerd's", async () => {
    const rec = await recording("load-tty");
    const messages = (rec.runs[0]!.exchanges.at(-1)!.responseBody as { messages: Json[] }).messages;
    const progress = messages.filter((m) => m.status === "Loading layer");
    expect(progress.length).toBeGreaterThan(0);
    for (const m of progress) {
      const { current, total } = m.progressDetail as { current: number; total: number };
      expect(progressBar(current, total)).toBe(m.progress);
    }
    expect(progressBar(0, 1000)).toBe(`[>${" ".repeat(50)}]       0B/1kB`);
    expect(progressBar(123_456_789, 1_234_567_890)).toBe(`[=====>${" ".repeat(45)}]  123.5MB/1.235GB`);
  });
});

describe("not-found texts", () => {
  it("dockerd's: the familiar name with :latest, sha256: for a 64-hex ID; save's 'reference does not exist'", async () => {
    const { noSuchImage } = await import("../../src/engine/images.js");
    const { NotFoundError, InvalidArgumentError } = await import("@berth/digest");
    const nf = new NotFoundError("image x: not found", { code: "ERR_IMAGE_NOT_FOUND" });
    const text = (name: string, save = false) => (noSuchImage(name, nf, { save }) as Error).message;
    for (const scenario of ["rmi-no-such", "tag-no-such", "history-no-such"]) {
      const ex = (await recording(scenario)).runs[0]!.exchanges.at(-1)!;
      expect(text("nosuch:img")).toBe((ex.responseBody as { value: { message: string } }).value.message);
    }
    const save = (await recording("save-no-such")).runs[0]!.exchanges.at(-1)!;
    expect(text("nosuch:img", true)).toBe((save.responseBody as { value: { message: string } }).value.message);
    expect(text("nosuch")).toBe("No such image: nosuch:latest");
    expect(text("localhost:5000/x/y")).toBe("No such image: localhost:5000/x/y:latest");
    expect(text("0dc3f49d8ae2")).toBe("No such image: 0dc3f49d8ae2:latest");
    expect(text("a".repeat(64))).toBe(`No such image: sha256:${"a".repeat(64)}`);
    expect(text("nosuch", true)).toBe("No such image: nosuch:latest");
    expect((noSuchImage("nosuch:img", nf) as { code: string }).code).toBe("ERR_IMAGE_NOT_FOUND");
    const other = new InvalidArgumentError("bad");
    expect(noSuchImage("x", other)).toBe(other);
  });
});

describe("tag and import targets (dockerd's RepoTagReference)", () => {
  it("repo with or without a tag, the tag parameter winning, refusals", async () => {
    const { repoTagReference } = await import("../../src/engine/images.js");
    // what the two clients sent in the recordings
    for (const scenario of ["tag", "tag-by-prefix", "import", "import-change-message"]) {
      for (const run of (await recording(scenario)).runs) {
        const q = run.exchanges.at(-1)!.query as Record<string, string>;
        expect(repoTagReference(q.repo!, q.tag ?? "")).toMatch(/^(docker\.io\/engine-rec\/(app:2|imported:[12])|localhost:5000\/solo:new)$/);
      }
    }
    expect(repoTagReference("busybox", "")).toBe("docker.io/library/busybox:latest");
    expect(repoTagReference("x/y:1", "2")).toBe("docker.io/x/y:2");
    for (const [repo, tag] of [["UPPER", ""], ["x", "bad tag"], [`x@sha256:${"a".repeat(64)}`, ""], ["sha256", "1"], ["", ""]]) {
      expect(() => repoTagReference(repo!, tag!), `${repo} ${tag}`).toThrow(expect.objectContaining({ code: "ERR_ENGINE_INVALID_PARAMETER" }));
    }
  });
});
