/**
 * How a request or response body is kept in a recording: JSON as JSON, a
 * stream of JSON messages as their sequence, a tar as its entry list (never
 * its bytes), anything else as text (small) or as size + sha256.
 * @module
 */
import { createHash } from "node:crypto";
import { extract } from "tar-stream";

/** One entry of a recorded tar body. */
export interface RecordedTarEntry {
  name: string;
  type: string;
  size: number;
  linkname?: string;
}

/** A recorded body. */
export type RecordedBody =
  | { kind: "empty" }
  | { kind: "json"; value: unknown }
  | { kind: "json-stream"; messages: unknown[] }
  | { kind: "text"; text: string }
  | { kind: "tar"; size: number; sha256: string; entries: RecordedTarEntry[] }
  | { kind: "binary"; size: number; sha256: string };

/** Bodies up to this size are analysed (tar entries, JSON); larger ones keep only size and digest. */
export const MAX_ANALYSED_BODY = 64 << 20;
const MAX_TEXT = 4096;

/**
 * Collects a body as it streams past (the proxy tees every chunk here) and
 * turns it into a {@link RecordedBody} at the end.
 */
export class BodyRecorder {
  private readonly hash = createHash("sha256");
  private readonly chunks: Buffer[] = [];
  private size = 0;

  /** Called with each chunk in order. */
  push(chunk: Buffer): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    if (this.size <= MAX_ANALYSED_BODY) this.chunks.push(chunk);
    else this.chunks.length = 0;
  }

  /** The recorded form, chosen by content type and content. */
  async finish(contentType: string | undefined): Promise<RecordedBody> {
    const sha256 = this.hash.digest("hex");
    if (this.size === 0) return { kind: "empty" };
    if (this.size > MAX_ANALYSED_BODY) return { kind: "binary", size: this.size, sha256 };
    const bytes = Buffer.concat(this.chunks);
    return classify(bytes, contentType, sha256);
  }
}

/** Classify a complete body. */
export async function classify(bytes: Buffer, contentType: string | undefined, sha256?: string): Promise<RecordedBody> {
  const digest = sha256 ?? createHash("sha256").update(bytes).digest("hex");
  if (bytes.length === 0) return { kind: "empty" };
  const ct = (contentType ?? "").toLowerCase();
  const text = bytes.toString("utf8");
  if (ct.includes("json") || /^\s*[[{]/.test(text)) {
    try {
      return { kind: "json", value: JSON.parse(text) };
    } catch {
      const messages = parseJsonStream(text);
      if (messages) return { kind: "json-stream", messages };
    }
  }
  if (ct.includes("tar") || looksLikeTar(bytes)) {
    const entries = await tarEntries(bytes);
    if (entries) return { kind: "tar", size: bytes.length, sha256: digest, entries };
  }
  if (bytes.length <= MAX_TEXT && isPrintable(text)) return { kind: "text", text };
  return { kind: "binary", size: bytes.length, sha256: digest };
}

/**
 * Split concatenated JSON values (dockerd's progress streams: one object per
 * line, `\r\n` separated, sometimes none) into their sequence; undefined when
 * the text is not such a stream.
 */
export function parseJsonStream(text: string): unknown[] | undefined {
  const out: unknown[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (i >= text.length) break;
    const end = endOfJsonValue(text, i);
    if (end < 0) return undefined;
    try {
      out.push(JSON.parse(text.slice(i, end)));
    } catch {
      return undefined;
    }
    i = end;
  }
  return out.length > 0 ? out : undefined;
}

/** Index after the JSON object or array starting at `start`, or -1. */
function endOfJsonValue(text: string, start: number): number {
  const open = text[start];
  if (open !== "{" && open !== "[") return -1;
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

function looksLikeTar(bytes: Buffer): boolean {
  return bytes.length >= 512 && bytes.subarray(257, 262).toString("latin1") === "ustar";
}

function isPrintable(text: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point
  return !/[\u0000-\u0008\u000e-\u001a\u001c-\u001f\ufffd]/.test(text);
}

/** The entries of a tar (names, types, sizes, link targets), or undefined when it does not parse. */
export function tarEntries(bytes: Buffer): Promise<RecordedTarEntry[] | undefined> {
  return new Promise((resolve) => {
    const entries: RecordedTarEntry[] = [];
    const ex = extract();
    ex.on("entry", (header, stream, next) => {
      entries.push({
        name: header.name,
        type: header.type ?? "file",
        size: header.size ?? 0,
        ...(header.linkname ? { linkname: header.linkname } : {}),
      });
      stream.on("end", next);
      stream.resume();
    });
    ex.on("finish", () => resolve(entries));
    ex.on("error", () => resolve(undefined));
    ex.end(bytes);
  });
}
