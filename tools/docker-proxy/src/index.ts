/**
 * `@berth/docker-proxy`: the oracle for berth's Docker Engine API face — a
 * logging proxy between a docker client and dockerd, the deterministic
 * fixture images, the CLI scenarios of issue 14, and (in `record.ts`) the
 * script that records dockerd's answers as test fixtures.
 * @module
 */
export { BodyRecorder, classify, MAX_ANALYSED_BODY, parseJsonStream, type RecordedBody, type RecordedTarEntry, tarEntries } from "./body.js";
export { type FixtureArchives, pseudoRandom, type RegistryImage, writeFixtureArchives } from "./fixtures.js";
export { type Exchange, type ProxyListen, type RecordingProxy, type RecordingProxyOptions, startRecordingProxy } from "./proxy.js";
export { SEEDED_REPOSITORY, SEEDED_TAG, SeedError, seedRegistry, seededRegistry } from "./registry.js";
export {
  CLI_SCENARIOS,
  CLIS,
  type CliRun,
  type CliScenario,
  NoRegistryError,
  PrepareError,
  prepareRun,
  RAW_SCENARIOS,
  type RawScenario,
  resolveArgs,
  runCli,
} from "./scenarios.js";
export type { RawRecording, RecordedRun, Recording } from "./record.js";
