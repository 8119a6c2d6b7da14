import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The in-memory layer store is the store for runtimes without a file system:
// nothing it reaches through this package's own modules may import the file
// system or the lock library. Package imports (`@berth/digest`, `@berth/oci`,
// `fzstd`) are not followed: only their names are checked.
const src = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "src");
const FORBIDDEN = new Set(["fs", "node:fs", "fs/promises", "node:fs/promises", "proper-lockfile"]);
const SPECIFIER_RE = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)|^\s*import\s*["']([^"']+)["']/gm;

/** The specifiers a module's source imports or re-exports (type-only ones included). */
function specifiers(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(SPECIFIER_RE)].map((m) => (m[1] ?? m[2] ?? m[3]) as string);
}

/** Every local module `entry` reaches, with the specifiers each imports. */
function graph(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop() as string;
    if (seen.has(file)) continue;
    const specs = specifiers(file);
    seen.set(file, specs);
    for (const s of specs) {
      if (s.startsWith(".")) todo.push(path.resolve(path.dirname(file), s.replace(/\.js$/, ".ts")));
    }
  }
  return seen;
}

describe("memory.ts module graph", () => {
  const reached = graph(path.join(src, "memory.ts"));

  it("follows local imports", () => {
    const names = [...reached.keys()].map((f) => path.relative(src, f));
    expect(names).toContain("memory.ts");
    expect(names).toContain("types.ts");
    expect(names).not.toContain("layers.ts");
    expect(names).not.toContain("lock.ts");
    expect(names).not.toContain("fsck.ts");
  });

  it("imports neither node:fs nor the lock library", () => {
    const bad: string[] = [];
    for (const [file, specs] of reached) {
      for (const s of specs) if (FORBIDDEN.has(s)) bad.push(`${path.relative(src, file)} imports ${s}`);
    }
    expect(bad).toEqual([]);
  });

  it("the scanner sees what it must refuse", () => {
    // Guard against a regex that silently matches nothing.
    const lock = graph(path.join(src, "lock.ts"));
    const all = [...lock.values()].flat();
    expect(all).toContain("node:fs");
    expect(all).toContain("proper-lockfile");
  });
});
