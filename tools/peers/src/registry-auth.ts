/**
 * Auth configurations of docker-registry (distribution 2.8) for tests:
 * htpasswd (Basic auth; distribution reads bcrypt entries only, so they are
 * made with bcryptjs — Apache's `htpasswd` tool is not needed) and token auth
 * trusting a {@link TokenIssuer}; plus a reader of the registry's access log
 * (gorilla's combined log format, one line per request on its stdout).
 * @module
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { hashSync } from "bcryptjs";
import type { TokenIssuer } from "./token-issuer.js";

/** How a test registry authenticates. */
export type RegistryAuth =
  | { kind: "none" }
  /** Basic auth with these users (username → password; default `{ berth: "berth-secret" }`). */
  | { kind: "htpasswd"; users?: Record<string, string>; realm?: string }
  /** Bearer tokens from this issuer. */
  | { kind: "token"; issuer: TokenIssuer };

/** Default test user of htpasswd registries and token issuers. */
export const TEST_USER = { username: "berth", password: "berth-secret" } as const;

/** Write an htpasswd file of bcrypt entries (cost 5: tests, not production). */
export async function writeHtpasswd(file: string, users: Record<string, string>): Promise<void> {
  const lines = Object.entries(users).map(([u, p]) => `${u}:${hashSync(p, 5)}`);
  await writeFile(file, `${lines.join("\n")}\n`, { mode: 0o600 });
}

/** The `auth:` section of a registry config for `auth` (files it needs are written into `dir`). */
export async function authConfigLines(auth: RegistryAuth, dir: string): Promise<string[]> {
  if (auth.kind === "none") return [];
  if (auth.kind === "htpasswd") {
    const file = join(dir, "htpasswd");
    await writeHtpasswd(file, auth.users ?? { [TEST_USER.username]: TEST_USER.password });
    return ["auth:", "  htpasswd:", `    realm: ${JSON.stringify(auth.realm ?? "berth-test")}`, `    path: ${JSON.stringify(file)}`];
  }
  const i = auth.issuer;
  return [
    "auth:",
    "  token:",
    `    realm: ${JSON.stringify(i.realm)}`,
    `    service: ${JSON.stringify(i.service)}`,
    `    issuer: ${JSON.stringify(i.issuer)}`,
    `    rootcertbundle: ${JSON.stringify(i.certFile)}`,
  ];
}

/** One request in the registry's access log. */
export interface AccessLogEntry {
  method: string;
  /** Path and query, as requested. */
  path: string;
  status: number;
  /** Response body bytes written. */
  bytes: number;
  userAgent: string;
}

const LINE = /^\S+ \S+ \S+ \[[^\]]+\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+|-) "[^"]*" "([^"]*)"$/;

/** Parse the access-log lines of a registry log (other log lines are skipped). */
export function parseAccessLog(text: string): AccessLogEntry[] {
  const out: AccessLogEntry[] = [];
  for (const line of text.split("\n")) {
    const m = LINE.exec(line.trim());
    if (!m) continue;
    out.push({ method: m[1]!, path: m[2]!, status: Number(m[3]), bytes: m[4] === "-" ? 0 : Number(m[4]), userAgent: m[5]! });
  }
  return out;
}

/** Read and parse a registry's access log file. */
export async function readAccessLog(logFile: string): Promise<AccessLogEntry[]> {
  return parseAccessLog(await readFile(logFile, "utf8"));
}
