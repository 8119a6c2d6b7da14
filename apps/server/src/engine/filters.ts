/**
 * The `filters` query parameter in both JSON encodings dockerd accepts:
 * `{"key":{"value":true}}` (current clients) and `{"key":["value"]}` (the
 * legacy one, still sent by older clients and dockerode users).
 * @module
 */
import { InvalidArgumentError } from "@berth/digest";
import { EngineErrorCode } from "./errors.js";

function invalid(raw: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid filters ${JSON.stringify(raw)}: ${why}`, { code: EngineErrorCode.InvalidFilters });
}

/**
 * Parse a `filters` value ("" or absent: no filters) into the service's
 * `Filters` (`key → values`). Values of the map
 * encoding are its keys whatever their boolean (as moby reads them).
 * @throws InvalidArgumentError `ERR_ENGINE_INVALID_FILTERS`
 */
export function parseFilters(raw: string | null): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (raw === null || raw === "") return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw invalid(raw, (e as Error).message);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw invalid(raw, "not a JSON object");
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (Array.isArray(value)) {
      if (!value.every((v) => typeof v === "string")) throw invalid(raw, `values of ${JSON.stringify(key)} must be strings`);
      out[key] = [...new Set(value as string[])];
    } else if (value !== null && typeof value === "object") {
      if (!Object.values(value).every((v) => typeof v === "boolean")) throw invalid(raw, `values of ${JSON.stringify(key)} must map to booleans`);
      out[key] = Object.keys(value);
    } else {
      throw invalid(raw, `${JSON.stringify(key)} must map to a list or an object`);
    }
  }
  return out;
}
