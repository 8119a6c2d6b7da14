/** Holder names as file names under `layers/refs/`. @module */
import { InvalidArgumentError } from "@berth/digest";
import { LayerStoreErrorCode } from "./errors.js";

/** Validate a holder name; returns the file name used for it under `layers/refs/`. */
export function holderFileName(holder: string): string {
  if (typeof holder !== "string" || holder.length === 0 || Buffer.byteLength(holder) > 180) {
    throw new InvalidArgumentError(`invalid holder ${JSON.stringify(holder)}: expected 1-180 bytes`, { code: LayerStoreErrorCode.INVALID_HOLDER });
  }
  return `h.${Buffer.from(holder, "utf8").toString("base64url")}`;
}

/** The holder a file name under `layers/refs/` stands for (`undefined` if it is no holder file). */
export function holderFromFileName(name: string): string | undefined {
  if (!name.startsWith("h.")) return undefined;
  const holder = Buffer.from(name.slice(2), "base64url").toString("utf8");
  return holderFileName(holder) === name ? holder : undefined;
}
