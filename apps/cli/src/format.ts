/**
 * Output helpers that match the docker CLI: human sizes, relative times,
 * aligned tables, and `--format` (table | json | go-template-like).
 */

const SIZE_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];

/** docker's units.HumanSizeWithPrecision(size, 3): decimal units, 3 significant digits. */
export function humanSize(bytes: number): string {
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < SIZE_UNITS.length - 1) {
    size /= 1000;
    i++;
  }
  return `${formatG(size, 3)}${SIZE_UNITS[i]}`;
}

/** Go's %.{p}g formatting for the magnitudes humanSize produces. */
function formatG(n: number, precision: number): string {
  if (n === 0) return "0";
  const s = n.toPrecision(precision);
  // %g drops trailing zeros and the decimal point
  return s.includes("e") ? String(Number(s)) : s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

/** Parse a size like `10GB`, `512MiB`, `1.5g`, `1000` (bytes). */
export function parseSize(input: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)b?\s*$/i.exec(input);
  if (!m) throw new Error(`invalid size ${JSON.stringify(input)}`);
  const n = Number(m[1]);
  const unit = m[2]!.toLowerCase();
  const base = m[3] ? 1024 : 1000;
  const pow = unit === "" ? 0 : "kmgtp".indexOf(unit) + 1;
  // docker's RAMInBytes treats k/m/g as binary; we follow units.FromHumanSize (decimal) unless "i" is given
  return Math.round(n * base ** pow);
}

/** docker's units.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

/** "3 hours ago", as `docker images` prints CREATED. */
export function ago(date: Date | string | undefined, now = Date.now()): string {
  if (date === undefined) return "N/A";
  const t = typeof date === "string" ? Date.parse(date) : date.getTime();
  if (Number.isNaN(t) || t <= 0) return "N/A";
  return `${humanDuration(now - t)} ago`;
}

/** Render rows as a left-aligned table with three spaces between columns (docker's tabwriter). */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3)))
      .join("")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

/** Field lookup for templates: `.ID`, `.Config.Env`, case as written. */
function lookupPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split(".").filter(Boolean)) {
    if (cur == null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function templateValue(v: unknown): string {
  if (v === undefined || v === null) return "<no value>";
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return `[${v.map(templateValue).join(" ")}]`;
  if (typeof v === "object") return `map[${Object.entries(v as object).map(([k, x]) => `${k}:${templateValue(x)}`).join(" ")}]`;
  return String(v);
}

/**
 * A small subset of Go templates, enough for the usual `--format` uses:
 * `{{.Field}}`, `{{.A.B}}`, `{{json .}}`, `{{json .Field}}`, `{{join .List ","}}`,
 * `{{upper .X}}`, `{{lower .X}}`, `{{println}}`; `table` prefix prints a header row.
 */
export function renderTemplate(template: string, obj: unknown): string {
  return template.replace(/\{\{\s*(.*?)\s*\}\}/g, (_m, expr: string) => {
    const parts = expr.match(/"[^"]*"|\S+/g) ?? [];
    const arg = (p: string | undefined): unknown => {
      if (p === undefined) return undefined;
      if (p.startsWith('"')) return p.slice(1, -1);
      if (p === ".") return obj;
      if (p.startsWith(".")) return lookupPath(obj, p);
      throw new Error(`template: unsupported expression ${JSON.stringify(expr)}`);
    };
    const [head, ...rest] = parts;
    switch (head) {
      case "json":
        return JSON.stringify(arg(rest[0]) ?? null);
      case "join": {
        const list = arg(rest[0]);
        return Array.isArray(list) ? list.map(templateValue).join(String(arg(rest[1]) ?? "")) : templateValue(list);
      }
      case "upper":
        return templateValue(arg(rest[0])).toUpperCase();
      case "lower":
        return templateValue(arg(rest[0])).toLowerCase();
      case "println":
        return `${rest.map((r) => templateValue(arg(r))).join(" ")}\n`;
      default:
        return templateValue(arg(head));
    }
  });
}

/** Unescape `\t` and `\n` the way docker does in --format strings. */
export function unescapeFormat(f: string): string {
  return f.replace(/\\t/g, "\t").replace(/\\n/g, "\n");
}

/** Header of a `{{.Field}}` column, as docker names it (CreatedSince → CREATED, …). */
function columnHeader(cell: string, names: Record<string, string>): string {
  const fields = [...cell.matchAll(/\{\{[^}]*?\.(\w+)[^}]*\}\}/g)].map((m) => m[1]!);
  if (fields.length === 0) return cell.trim().toUpperCase();
  return fields.map((f) => names[f] ?? f.replace(/([a-z])([A-Z])/g, "$1 $2").toUpperCase()).join(" ");
}

/**
 * Render rows with a user's `--format`: `json` is handled by the caller; a
 * `table …` template prints an aligned table with docker's column headers
 * (columns split at tabs); any other template prints one line per row.
 */
export function renderRows(format: string, rows: readonly unknown[], headerNames: Record<string, string>): string {
  const tmpl = unescapeFormat(format);
  if (tmpl.startsWith("table")) {
    const body = tmpl.slice(5).trim() || "{{.ID}}";
    const cells = body.split("\t");
    return table(
      cells.map((c) => columnHeader(c, headerNames)),
      rows.map((r) => cells.map((c) => renderTemplate(c, r))),
    );
  }
  return rows.map((r) => `${renderTemplate(tmpl, r)}\n`).join("");
}
