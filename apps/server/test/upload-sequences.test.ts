/**
 * The upload state machine as sequences (fast-check model-based testing):
 * random runs of POST (a session, or a monolithic push with a right or wrong
 * digest), PATCH (at the session's offset, at another, streamed without
 * `Content-Range`, through another repository), GET of a session, PUT with the
 * right or a wrong digest (with or without a last chunk), DELETE, and HEAD of
 * blobs, against `berth serve` over a real store. A model says what each step
 * must answer — status, the session's `Range`, which blobs the store serves
 * — and after every sequence the store's fsck finds no damage.
 *
 * Between sequences the server's upkeep runs as its timer would a day later
 * (grace 0): the registry's sweep forgets the blobs no manifest names, and a
 * GC frees them. So each sequence starts from a small repository record, and
 * the sweep and GC run between pushes tens of thousands of times; without
 * it the records of the two repositories keep every blob of the run and a
 * 100,000-sequence run spends its time rewriting them.
 *
 * 60 sequences by default; `BERTH_UPLOAD_RUNS=2000` for the long run,
 * `BERTH_UPLOAD_SEED` to replay a reported seed.
 */
import { createHash } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Reply, RegistryClient, startStoreBerth } from "./helpers.js";

const RUNS = Number(process.env.BERTH_UPLOAD_RUNS ?? 60);
const SEED = process.env.BERTH_UPLOAD_SEED === undefined ? undefined : Number(process.env.BERTH_UPLOAD_SEED);
const REPOS = ["seq/a", "seq/b"] as const;

let berth: Awaited<ReturnType<typeof startStoreBerth>>;
let client: RegistryClient;
beforeAll(async () => {
  berth = await startStoreBerth({ log: { format: "none" }, registry: { blobGraceMs: 0 } });
  client = new RegistryClient(`http://${berth.server.host}:${berth.server.port}`, REPOS[0]);
});
afterAll(async () => {
  await berth?.close();
});

const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const WRONG = `sha256:${"0".repeat(64)}`;

interface Session {
  repo: string;
  location: string;
  bytes: Buffer;
}

/** What the server must hold: open sessions (by the order they were made; closed ones stay as undefined) and each repository's blobs. */
interface Model {
  sessions: (Session | undefined)[];
  gone: string[];
  blobs: Map<string, Set<string>>;
}

type Real = { client: RegistryClient };

function expectStatus(r: Reply, status: number, what: string): void {
  expect(r.status, `${what}: ${r.body.toString("utf8").slice(0, 300)}`).toBe(status);
}

/** A session picked by index: an open one, else a closed one's location (404 expected), else none. */
function pick(m: Model, i: number): { s: Session | undefined; location: string | undefined } {
  const open = m.sessions.filter((s): s is Session => s !== undefined);
  if (open.length > 0 && i % 4 !== 3) return { s: open[i % open.length], location: open[i % open.length]!.location };
  if (m.gone.length > 0) return { s: undefined, location: m.gone[i % m.gone.length] };
  return { s: undefined, location: undefined };
}

class Start implements fc.AsyncCommand<Model, Real> {
  constructor(readonly repo: string) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const res = await r.client.request("POST", "/v2/<name>/blobs/uploads/", { name: this.repo });
    expectStatus(res, 202, "POST");
    expect(res.headers.get("range")).toBe("0-0");
    m.sessions.push({ repo: this.repo, location: res.location(), bytes: Buffer.alloc(0) });
  }
  toString = () => `Start(${this.repo})`;
}

class Monolithic implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly repo: string,
    readonly body: Uint8Array,
    readonly right: boolean,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const digest = this.right ? sha(this.body) : WRONG;
    const res = await r.client.request("POST", "/v2/<name>/blobs/uploads/", { name: this.repo, query: { digest }, body: this.body, headers: { "content-type": "application/octet-stream" } });
    if (this.right) {
      expectStatus(res, 201, "monolithic POST");
      m.blobs.get(this.repo)!.add(digest);
    } else {
      expectStatus(res, 400, "monolithic POST, wrong digest");
      expect(res.errorCode()).toBe("DIGEST_INVALID");
    }
  }
  toString = () => `Monolithic(${this.repo}, ${this.body.length}, ${this.right})`;
}

class Patch implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly chunk: Uint8Array,
    readonly mode: "at" | "off" | "streamed" | "other-repo",
  ) {}
  check = (m: Readonly<Model>) => pick(m as Model, this.i).location !== undefined;
  async run(m: Model, r: Real): Promise<void> {
    const { s, location } = pick(m, this.i);
    const offset = s?.bytes.length ?? 0;
    const start = this.mode === "off" ? offset + 1 : offset;
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (this.mode !== "streamed" && this.chunk.length > 0) headers["content-range"] = `${start}-${start + this.chunk.length - 1}`;
    const other = s ? REPOS.find((x) => x !== s.repo)! : REPOS[0];
    const path = this.mode === "other-repo" && s ? location!.replace(`/v2/${s.repo}/`, `/v2/${other}/`) : location!;
    const res = await r.client.request("PATCH", path, { headers, body: this.chunk });
    if (!s || this.mode === "other-repo") {
      expectStatus(res, 404, "PATCH of an unknown session");
      expect(res.errorCode()).toBe("BLOB_UPLOAD_UNKNOWN");
      return;
    }
    if (this.mode === "off" && this.chunk.length > 0) {
      expectStatus(res, 416, "PATCH at the wrong offset");
      expect(res.headers.get("range")).toBe(`0-${Math.max(0, offset - 1)}`);
      return;
    }
    expectStatus(res, 202, "PATCH");
    s.bytes = Buffer.concat([s.bytes, this.chunk]);
    expect(res.headers.get("range")).toBe(`0-${Math.max(0, s.bytes.length - 1)}`);
  }
  toString = () => `Patch(${this.i}, ${this.chunk.length}, ${this.mode})`;
}

class Status implements fc.AsyncCommand<Model, Real> {
  constructor(readonly i: number) {}
  check = (m: Readonly<Model>) => pick(m as Model, this.i).location !== undefined;
  async run(m: Model, r: Real): Promise<void> {
    const { s, location } = pick(m, this.i);
    const res = await r.client.request("GET", location!);
    if (!s) return expectStatus(res, 404, "GET of a closed session");
    expectStatus(res, 204, "GET of a session");
    expect(res.headers.get("range")).toBe(`0-${Math.max(0, s.bytes.length - 1)}`);
  }
  toString = () => `Status(${this.i})`;
}

class Put implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly last: Uint8Array,
    readonly right: boolean,
  ) {}
  check = (m: Readonly<Model>) => pick(m as Model, this.i).location !== undefined;
  async run(m: Model, r: Real): Promise<void> {
    const { s, location } = pick(m, this.i);
    const whole = Buffer.concat([s?.bytes ?? Buffer.alloc(0), this.last]);
    const digest = this.right ? sha(whole) : WRONG;
    const res = await r.client.request("PUT", location!, { query: { digest }, body: this.last, headers: { "content-type": "application/octet-stream" } });
    if (!s) return expectStatus(res, 404, "PUT of a closed session");
    // the session ends either way
    m.sessions[m.sessions.indexOf(s)] = undefined;
    m.gone.push(location!);
    if (this.right) {
      expectStatus(res, 201, "PUT");
      expect(res.headers.get("docker-content-digest")).toBe(digest);
      m.blobs.get(s.repo)!.add(digest);
    } else {
      expectStatus(res, 400, "PUT with a wrong digest");
      expect(res.errorCode()).toBe("DIGEST_INVALID");
    }
  }
  toString = () => `Put(${this.i}, ${this.last.length}, ${this.right})`;
}

class Cancel implements fc.AsyncCommand<Model, Real> {
  constructor(readonly i: number) {}
  check = (m: Readonly<Model>) => pick(m as Model, this.i).location !== undefined;
  async run(m: Model, r: Real): Promise<void> {
    const { s, location } = pick(m, this.i);
    const res = await r.client.request("DELETE", location!);
    if (!s) return expectStatus(res, 404, "DELETE of a closed session");
    expectStatus(res, 204, "DELETE");
    m.sessions[m.sessions.indexOf(s)] = undefined;
    m.gone.push(location!);
  }
  toString = () => `Cancel(${this.i})`;
}

class HeadBlobs implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    // without auth every blob of the store is readable through any repository (types.ts, BlobScope)
    const all = new Set(REPOS.flatMap((x) => [...m.blobs.get(x)!]));
    for (const repo of REPOS) {
      for (const digest of all) expectStatus(await r.client.request("HEAD", `/v2/<name>/blobs/${digest}`, { name: repo }), 200, `HEAD ${digest} in ${repo}`);
      expectStatus(await r.client.request("HEAD", `/v2/<name>/blobs/${WRONG}`, { name: repo }), 404, `HEAD of a blob nobody pushed in ${repo}`);
    }
  }
  toString = () => "HeadBlobs";
}

const bytes = fc.uint8Array({ minLength: 0, maxLength: 3000 });
const index = fc.nat({ max: 20 });
const repo = fc.constantFrom(...REPOS);
const commands = [
  repo.map((x) => new Start(x)),
  fc.tuple(repo, fc.uint8Array({ minLength: 1, maxLength: 3000 }), fc.boolean()).map(([x, b, ok]) => new Monolithic(x, b, ok)),
  fc.tuple(index, bytes, fc.constantFrom("at", "at", "off", "streamed", "other-repo") as fc.Arbitrary<Patch["mode"]>).map(([i, b, mode]) => new Patch(i, b, mode)),
  index.map((i) => new Status(i)),
  fc.tuple(index, bytes, fc.boolean()).map(([i, b, ok]) => new Put(i, b, ok)),
  index.map((i) => new Cancel(i)),
  fc.constant(new HeadBlobs()),
];

describe("the upload state machine, as random sequences", () => {
  it("answers every step as the model says; the store has no damage after", { timeout: 120_000 + RUNS * 50 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 25 }), async (cmds) => {
        const model: Model = { sessions: [], gone: [], blobs: new Map(REPOS.map((r) => [r, new Set<string>()])) };
        await fc.asyncModelRun(() => ({ model, real: { client } }), cmds);
        // sessions left open are the client's business (the idle sweep ends them); cancel them so runs stay apart
        for (const s of model.sessions) if (s) await client.request("DELETE", s.location);
        await berth.server.registry!.sweep();
        await berth.server.service.store.gc();
      }),
      { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) },
    );
    const report = await berth.server.service.store.fsck();
    expect(report.problems.filter((p) => !p.garbage)).toEqual([]);
  });
});
