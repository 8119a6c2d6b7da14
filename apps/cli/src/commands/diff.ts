/**
 * `berth diff IMAGE` (what each layer adds, changes, removes) and `berth
 * diff IMAGE1 IMAGE2` (how the second's filesystem differs from the
 * first's), in `docker diff`'s `A /path`, `C /path`, `D /path` lines or as
 * JSON. The work is `diffImage` / `diffImages` of `@berth/image-service`.
 * @module
 */
import type { PathChange } from "@berth/image-service";
import type { Command } from "commander";
import { type Context, openContextService } from "../context.js";
import { UsageError } from "../exit.js";

const LETTER = { added: "A", changed: "C", removed: "D" } as const;

const line = (c: PathChange) => `${LETTER[c.kind]} /${c.path}\n`;

/** `berth diff`. */
export function register(program: Command, ctx: Context): void {
  program
    .command("diff")
    .description("Show the paths each layer of an image adds (A), changes (C) and removes (D), or how a second image's filesystem differs from the first's")
    .argument("<image>", "image (name, ID or ID prefix)")
    .argument("[image2]", "a second image: print the changes from <image>'s filesystem to this one's")
    .option("--layer <n>", "only layer n (0 = bottom; negative counts from the top): plain docker diff lines, no header")
    .option("--format <format>", "text (default) or json")
    .addHelpText(
      "after",
      `
With one image, each layer's changes against the layers below follow a header
line "# layer N <diffID> <created_by>". Changes follow Docker's rules: a
directory holding a change is listed as changed; what was under a removed
directory is not listed. Nothing is extracted: the layers' tar headers are read
(once; then cached).

Examples:
  berth diff app:1
  berth diff --layer -1 app:1        # what the last step did
  berth diff base:1 app:1`,
    )
    .action(async (image: string, image2: string | undefined, opts: { layer?: string; format?: string }) => {
      const format = opts.format ?? "text";
      if (format !== "text" && format !== "json") throw new UsageError(`invalid --format ${JSON.stringify(opts.format)} (want text or json)`);
      const svc = await openContextService(ctx);
      if (image2 !== undefined) {
        if (opts.layer !== undefined) throw new UsageError("--layer applies to one image, not to a comparison of two");
        const d = await svc.diffImages(image, image2);
        ctx.out(format === "json" ? `${JSON.stringify(d)}\n` : d.changes.map(line).join(""));
        return;
      }
      const d = await svc.diff(image);
      let layers = d.layers;
      if (opts.layer !== undefined) {
        const n = Number(opts.layer);
        const i = n < 0 ? layers.length + n : n;
        if (!Number.isInteger(n) || i < 0 || i >= layers.length) throw new UsageError(`invalid --layer ${JSON.stringify(opts.layer)} (the image has layers 0…${layers.length - 1})`);
        layers = [layers[i]!];
      }
      if (format === "json") ctx.out(`${JSON.stringify(opts.layer !== undefined ? layers[0] : d)}\n`);
      else if (opts.layer !== undefined) ctx.out(layers[0]!.changes.map(line).join(""));
      else ctx.out(layers.map((l) => `# layer ${l.index} ${l.diffID}${l.createdBy ? ` ${l.createdBy}` : ""}\n${l.changes.map(line).join("")}`).join(""));
    });
}
