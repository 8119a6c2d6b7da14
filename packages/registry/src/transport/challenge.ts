/**
 * `WWW-Authenticate` parsing (RFC 7235 challenges as registries send them):
 * `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push"`
 * — quoted values may hold commas and escaped quotes; several challenges may
 * share one header or come in several.
 * @module
 */
import { FailedPreconditionError } from "@berth/digest";
import { REGISTRY_ERROR_CODES } from "../errors.js";

/** One authentication challenge. */
export interface Challenge {
  /** Lower-case scheme: `bearer`, `basic`. */
  scheme: string;
  /** Parameters with lower-case names: `realm`, `service`, `scope`, `error`. */
  params: Record<string, string>;
}

function malformed(value: string, why: string): FailedPreconditionError {
  return new FailedPreconditionError(`malformed WWW-Authenticate ${JSON.stringify(value.slice(0, 200))}: ${why}`, {
    code: REGISTRY_ERROR_CODES.AUTH_CHALLENGE,
  });
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/**
 * Parse one or more `WWW-Authenticate` values into challenges.
 * @throws FailedPreconditionError `ERR_AUTH_CHALLENGE` on a value that is not a challenge list
 */
export function parseChallenges(values: string | readonly string[]): Challenge[] {
  const out: Challenge[] = [];
  for (const value of typeof values === "string" ? [values] : values) {
    let i = 0;
    const n = value.length;
    const skipWs = () => {
      while (i < n && (value[i] === " " || value[i] === "\t")) i++;
    };
    const token = () => {
      const start = i;
      while (i < n && TOKEN.test(value[i]!)) i++;
      return value.slice(start, i);
    };
    let current: Challenge | undefined;
    while (i < n) {
      skipWs();
      if (value[i] === ",") {
        i++;
        continue;
      }
      if (i >= n) break;
      const start = i;
      const name = token();
      if (name === "") throw malformed(value, `unexpected ${JSON.stringify(value[i])} at ${i}`);
      skipWs();
      if (value[i] === "=" && current) {
        // a parameter of the current challenge
        i++;
        skipWs();
        let v: string;
        if (value[i] === '"') {
          i++;
          let s = "";
          while (i < n && value[i] !== '"') {
            if (value[i] === "\\" && i + 1 < n) i++;
            s += value[i];
            i++;
          }
          if (value[i] !== '"') throw malformed(value, "unterminated quoted string");
          i++;
          v = s;
        } else {
          v = token();
        }
        current.params[name.toLowerCase()] = v;
        continue;
      }
      if (value[i] === "=" && !current) throw malformed(value, `parameter ${name} before any scheme`);
      // token68 form (`Basic abc==`) is not used by registries; a bare word starts a challenge
      i = start + name.length;
      current = { scheme: name.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}
