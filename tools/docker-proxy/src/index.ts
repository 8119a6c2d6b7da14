/**
 * `@berth/docker-proxy`: the oracle for berth's Docker Engine API face — a
 * logging proxy between a docker client and dockerd, the deterministic
 * fixture images, the CLI scenarios of issue 14, and (in `record.ts`) the
 * script that records dockerd's answers as test fixtures.
 * @module
 */
export { BodyRecorder, classify, MAX_ANALYSED_BODY, parseJsonStream, type RecordedBody, type RecordedTarEntry, tarEntries } from "./body.js";
export { type FixtureArchives, pseudoRandom, writeFixtureArchives } from "./fixtures.js";
export { type Exchange, type ProxyListen, type RecordingProxy, type RecordingProxyOptions, startRecordingProxy } from "./proxy.js";
export { CLI_SCENARIOS, CLIS, type CliRun, type CliScenario, RAW_SCENARIOS, type RawScenario, resolveArgs, runCli } from "./scenarios.js";
export type { RawRecording, RecordedRun, Recording } from "./record.js";
