/**
 * `pnpm bench [suite...]`: run the benchmarks against their peers in one run.
 * Suites: digest, layer-store, store, archive, engine, incremental, registry, serve-registry, explore, unpack, commit (default: all, in that order). Each suite is
 * also runnable alone: `node tools/bench/dist/<suite>.js`.
 */
const SUITES = ["digest", "layer-store", "store", "archive", "engine", "incremental", "registry", "serve-registry", "explore", "unpack", "commit"] as const;

async function main(argv: string[]): Promise<void> {
  const wanted = argv.length === 0 || argv.includes("all") ? [...SUITES] : argv;
  for (const name of wanted) {
    if (!(SUITES as readonly string[]).includes(name)) {
      process.stderr.write(`bench: unknown suite ${JSON.stringify(name)} (have: ${SUITES.join(", ")})\n`);
      process.exitCode = 2;
      return;
    }
  }
  for (const name of wanted) {
    process.stdout.write(`\n##### bench: ${name}\n`);
    const mod = (await import(`./${name}.js`)) as { run?: (args?: string[]) => Promise<unknown> };
    if (typeof mod.run !== "function") throw new Error(`bench suite ${name} has no run()`);
    await mod.run([]);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
