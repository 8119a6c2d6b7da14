/**
 * Replay a recorded CLI scenario against berth's face through the same
 * logging proxy and runner the recording used, and compare the two runs:
 * exit code, stdout, stderr, and every exchange field by field. The one place
 * that says what is normalised:
 *
 * - the API version in request paths (`/v1.41/` vs `/v1.50/`) — only when the
 *   client negotiated differently; pinned runs compare paths exactly;
 * - the `Date`, `Server`, `Api-Version` response headers and the
 *   `User-Agent`, `Host`, `Content-Length` request headers (values);
 * - relative times in CLI output (`6 years ago`);
 * - the registry's `127.0.0.1:PORT` (a fresh docker-registry per run, its
 *   port the kernel's choice: each run records its own as `registry`) as
 *   `<registry>`, in the output and in every exchange field;
 * - in pulls and pushes: the progress messages of a JSON stream (those with
 *   a `progress` bar: how many there are and their byte counts follow the
 *   timing of the transfer; the CLI prints them only on a terminal) are left
 *   out, and the interleaving of different layers' steps (consecutive
 *   messages or `ID: status` lines of 12-hex layer IDs, put in ID order, each
 *   layer's own steps kept in their order): dockerd moves layers
 *   concurrently, so which finishes first is timing, run to run;
 * - whatever a scenario lists in `allowed` (JSON paths whose values are
 *   berth's own: versions, error words) or `replace` (patterns in every
 *   string, for values of berth's own inside a text), each with its reason
 *   at the call site.
 */
import { join } from "node:path";
import type { CliRun, CliScenario, Exchange, FixtureArchives, RecordedBody, RecordedRun } from "@berth/docker-proxy";
import { runCli, startRecordingProxy } from "@berth/docker-proxy";

/** Run `scenario` with `cli` against the face listening on `socketPath`, recording the exchanges. */
export async function replay(
  cli: { name: string; path: string },
  scenario: CliScenario,
  opts: { socketPath: string; fx: FixtureArchives; env: NodeJS.ProcessEnv; scratch: string; registry?: string },
): Promise<RecordedRun> {
  // a unix socket, as in the recording (over TCP the Go client adds Accept-Encoding)
  const proxy = await startRecordingProxy({ upstreamSocket: opts.socketPath, listen: { socketPath: join(opts.scratch, `replay-${cli.name}.sock`) } });
  try {
    const run: CliRun = await runCli(cli.path, scenario, opts.fx, { ...opts.env, DOCKER_HOST: proxy.host }, opts.scratch, opts.registry);
    return { cli: cli.name, args: scenario.args, ...run, exchanges: await proxy.take(), ...(opts.registry ? { registry: opts.registry } : {}) };
  } finally {
    await proxy.close();
  }
}

/** Headers that differ by nature (dates, identities, connections), and `berth-api`: berth's own ping header, which clients that do not know it ignore. */
const IGNORED_RESPONSE_HEADERS = new Set(["date", "server", "api-version", "connection", "keep-alive", "berth-api"]);
const IGNORED_REQUEST_HEADERS = new Set(["user-agent", "host", "content-length", "connection"]);

/** Relative times as the CLI prints them (`About an hour ago`, `6 years ago`, `Less than a second ago`). */
export function normaliseOutput(text: string): string {
  return text.replace(/\b(?:About an? \w+|Less than a second|\d+ \w+?s?) ago\b/g, "<ago>");
}

const LAYER_ID = /^[0-9a-f]{12}$/;

/**
 * Runs of consecutive items that belong to a layer (`idOf` gives its 12-hex
 * ID) put in ID order, each layer's items keeping their order (a stable sort).
 */
function layersInIdOrder<T>(items: readonly T[], idOf: (item: T) => string | undefined): T[] {
  const out: T[] = [];
  for (let i = 0; i < items.length; ) {
    if (idOf(items[i]!) === undefined) {
      out.push(items[i++]!);
      continue;
    }
    let j = i;
    while (j < items.length && idOf(items[j]!) !== undefined) j++;
    out.push(...items.slice(i, j).sort((a, b) => (idOf(a)! < idOf(b)! ? -1 : idOf(a)! > idOf(b)! ? 1 : 0)));
    i = j;
  }
  return out;
}

/** CLI output with the lines of different layers (`0123456789ab: Pull complete`) in ID order. */
export function layerLinesInOrder(text: string): string {
  return layersInIdOrder(text.split("\n"), (l) => /^([0-9a-f]{12}): /.exec(l)?.[1]).join("\n");
}

/** A progress stream's messages without the progress-bar ones, the layers' steps in ID order. */
function streamWithoutBars(messages: readonly unknown[]): unknown[] {
  const steps = messages.filter((m) => !(m && typeof m === "object" && typeof (m as { progress?: unknown }).progress === "string"));
  return layersInIdOrder(steps, (m) => {
    const id = m && typeof m === "object" ? (m as { id?: unknown }).id : undefined;
    return typeof id === "string" && LAYER_ID.test(id) ? id : undefined;
  });
}

/** `value` with `map` applied to every string in it (keys included). */
function mapStrings<T>(value: T, map: (s: string) => string): T {
  if (typeof value === "string") return map(value) as T;
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, map)) as T;
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [map(k), mapStrings(v, map)])) as T;
  return value;
}

/** A run with its registry host (and the `replace` patterns) normalised in every string, and pull/push streams without their bars. */
function normaliseRun(run: RecordedRun, replace: ReadonlyArray<readonly [RegExp, string]>): RecordedRun {
  const host = run.registry;
  const map = (s: string) => {
    let out = host ? s.split(host).join("<registry>") : s;
    for (const [pattern, by] of replace) out = out.replace(pattern, by);
    return out;
  };
  const mapped = mapStrings({ ...run, registry: undefined }, map);
  if (!host) return mapped;
  return {
    ...mapped,
    stdout: layerLinesInOrder(mapped.stdout),
    stderr: layerLinesInOrder(mapped.stderr),
    exchanges: mapped.exchanges.map((e) =>
      e.responseBody.kind === "json-stream" ? { ...e, responseBody: { ...e.responseBody, messages: streamWithoutBars(e.responseBody.messages) } } : e,
    ),
  };
}

/** Differences between two JSON values, as `path: a ≠ b` lines; `allowed` paths may differ in value. */
export function jsonDiff(a: unknown, b: unknown, path = "$", allowed: ReadonlySet<string> = new Set()): string[] {
  if (allowed.has(path)) return [];
  if (Array.isArray(a) && Array.isArray(b)) {
    const out: string[] = a.length === b.length ? [] : [`${path}: length ${a.length} ≠ ${b.length}`];
    for (let i = 0; i < Math.min(a.length, b.length); i++) out.push(...jsonDiff(a[i], b[i], `${path}[${i}]`, allowed));
    return out;
  }
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    const out: string[] = [];
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    for (const k of new Set([...ka, ...kb])) {
      const p = `${path}.${k}`;
      if (!(k in a)) out.push(`${p}: missing in the recording`);
      else if (!(k in b)) out.push(`${p}: missing in berth's answer`);
      else out.push(...jsonDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], p, allowed));
    }
    return out;
  }
  return Object.is(a, b) ? [] : [`${path}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`];
}

function bodyValue(b: RecordedBody): unknown {
  switch (b.kind) {
    case "json":
      return b.value;
    case "json-stream":
      return b.messages;
    case "text":
      return b.text;
    default:
      return { kind: b.kind };
  }
}

function headerDiff(a: Exchange["requestHeaders"], b: Exchange["requestHeaders"], ignored: ReadonlySet<string>, where: string): string[] {
  const out: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (ignored.has(k)) continue;
    if (!(k in b)) out.push(`${where} header ${k}: missing in berth's answer`);
    else if (!(k in a)) out.push(`${where} header ${k}: not in the recording`);
    else if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) out.push(`${where} header ${k}: ${JSON.stringify(a[k])} ≠ ${JSON.stringify(b[k])}`);
  }
  return out;
}

/** Options of {@link compareRuns}. */
export interface CompareOptions {
  /** JSON paths (`$[1].response.Id`, `$.stderr`) whose values may differ. */
  allowed?: readonly string[];
  /** The runs negotiated different API versions: compare paths with the version replaced. */
  versionsDiffer?: boolean;
  /** Patterns replaced in every string of both runs (output, paths, headers, bodies): values of berth's own inside a text. */
  replace?: ReadonlyArray<readonly [RegExp, string]>;
}

/** Every difference between a recorded dockerd run and berth's, after the normalisation above. */
export function compareRuns(recordedRun: RecordedRun, berthRun: RecordedRun, opts: CompareOptions = {}): string[] {
  const recorded = normaliseRun(recordedRun, opts.replace ?? []);
  const berth = normaliseRun(berthRun, opts.replace ?? []);
  const allowed = new Set(opts.allowed ?? []);
  const out: string[] = [];
  const cmp = (k: "exitCode" | "stdout" | "stderr", norm: (v: string) => string = (v) => v) => {
    if (allowed.has(`$.${k}`)) return;
    if (norm(String(recorded[k])) !== norm(String(berth[k]))) out.push(`$.${k}: ${JSON.stringify(recorded[k])} ≠ ${JSON.stringify(berth[k])}`);
  };
  cmp("exitCode");
  cmp("stdout", normaliseOutput);
  cmp("stderr", normaliseOutput);
  const path = (p: string) => (opts.versionsDiffer ? p.replace(/^\/v[0-9.]+\//, "/vX/") : p);
  if (recorded.exchanges.length !== berth.exchanges.length) out.push(`exchanges: ${recorded.exchanges.length} ≠ ${berth.exchanges.length}`);
  recorded.exchanges.forEach((a, i) => {
    const b = berth.exchanges[i];
    if (!b) return;
    const at = `$[${i}]`;
    if (`${a.method} ${path(a.path)}` !== `${b.method} ${path(b.path)}`) out.push(`${at}: ${a.method} ${a.path} ≠ ${b.method} ${b.path}`);
    out.push(...jsonDiff(a.query, b.query, `${at}.query`, allowed));
    out.push(...headerDiff(a.requestHeaders, b.requestHeaders, IGNORED_REQUEST_HEADERS, `${at} request`));
    if (a.status !== b.status) out.push(`${at}.status: ${a.status} ≠ ${b.status}`);
    out.push(...headerDiff(a.responseHeaders, b.responseHeaders, new Set([...IGNORED_RESPONSE_HEADERS, ...allowedHeaders(allowed, at)]), `${at} response`));
    if (a.responseBody.kind !== b.responseBody.kind && !allowed.has(`${at}.response`)) {
      out.push(`${at}.response: ${a.responseBody.kind} ≠ ${b.responseBody.kind}`);
    } else out.push(...jsonDiff(bodyValue(a.responseBody), bodyValue(b.responseBody), `${at}.response`, allowed));
  });
  return out;
}

/** Headers a scenario allows to differ: `$[i].header.<name>` entries of `allowed`. */
function allowedHeaders(allowed: ReadonlySet<string>, at: string): string[] {
  return [...allowed].filter((p) => p.startsWith(`${at}.header.`)).map((p) => p.slice(`${at}.header.`.length));
}
