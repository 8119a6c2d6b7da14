import { randomBytes } from "node:crypto";
import type { ContainerConfig } from "@berth/image-store";
import { type DockerPeer, inspect } from "@berth/peers";

/** One step of a classic (`DOCKER_BUILDKIT=0`) build, from its output. */
export interface BuildStep {
  step: number;
  instruction: string;
  cached: boolean;
  /** Short (12 hex) ID the step produced. */
  id: string;
}

/** Parse `Step i/n : …`, ` ---> Using cache`, ` ---> <id>` blocks. */
export function parseClassicBuild(output: string): BuildStep[] {
  const steps: BuildStep[] = [];
  let cur: BuildStep | undefined;
  for (const line of output.split("\n")) {
    const s = /^Step (\d+)\/\d+ : (.*)$/.exec(line.trim());
    if (s) {
      cur = { step: Number(s[1]), instruction: s[2] as string, cached: false, id: "" };
      steps.push(cur);
      continue;
    }
    if (!cur) continue;
    if (/^ ---> Using cache$/.test(line)) cur.cached = true;
    const id = /^ ---> ([0-9a-f]{12})$/.exec(line);
    if (id) cur.id = id[1] as string;
  }
  return steps;
}

/** One image of a build's parent chain, bottom (first step after FROM) first. */
export interface ChainImage {
  id: string;
  /** The config the builder probed the cache with for this step. */
  probe: ContainerConfig;
  config: ContainerConfig;
}

/** Walk `top`'s parent chain in the daemon down to (excluding) `base`. */
export async function parentChain(peer: DockerPeer, top: string, base: string): Promise<ChainImage[]> {
  const out: ChainImage[] = [];
  let cur = top;
  while (cur && cur !== base) {
    const img = await inspect(peer, cur);
    const cc = (img.ContainerConfig ?? {}) as ContainerConfig;
    const cfg = (img.Config ?? {}) as ContainerConfig;
    // Images restored from --cache-from have a zero container_config; their config is the probe.
    out.unshift({ id: img.Id, probe: cc.Cmd && cc.Cmd.length > 0 ? cc : cfg, config: cfg });
    cur = img.Parent;
  }
  if (cur !== base) throw new Error(`chain of ${top} does not reach ${base}`);
  return out;
}

/**
 * The probe a classic build makes for a step: the step's recorded container
 * config with `Image` = the current parent (the builder's updateRunConfig),
 * and what the daemon did to it in place when it created the step's container
 * undone: the hostname it filled in for a RUN container, and the empty Labels
 * map its `merge()` puts where the probe had none.
 */
export function probeFor(recorded: ContainerConfig, parent: string, stepConfig?: ContainerConfig): ContainerConfig {
  const labels = recorded.Labels && Object.keys(recorded.Labels).length > 0 ? recorded.Labels : null;
  const probe: ContainerConfig = { ...recorded, Image: parent, Hostname: "", Labels: labels };
  // merge() also gave an empty Entrypoint the parent's (docker/cli#3477); the
  // step's own config (an unmerged copy of the probe's runConfig) tells.
  if (stepConfig && (recorded.Entrypoint?.length ?? 0) > 0 && (stepConfig.Entrypoint?.length ?? 0) === 0) {
    probe.Entrypoint = stepConfig.Entrypoint ?? null;
  }
  return probe;
}

export function nonce(): string {
  return randomBytes(6).toString("hex");
}

export async function serverVersion(peer: DockerPeer): Promise<string> {
  return (await peer.run(["version", "--format", "{{.Server.Version}}"])).stdout.trim();
}
