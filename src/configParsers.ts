/**
 * The value parsers of the settings table (src/configDocs.ts). Each one turns
 * the variable's text into its value or throws a SettingProblem whose message
 * says what was expected; the table's reader prefixes the variable's name.
 */
import { RESOURCE_FLOORS } from "./model/declaration.js";
import { parseDuration, parseMemory } from "./model/duration.js";
import { GAME_ID_PATTERN } from "./model/gameId.js";
import { parseQuantity } from "./model/quantity.js";

export class SettingProblem extends Error {
  override readonly name = "SettingProblem";
}

/** `rule`, when set, is appended to the setting's documented description (the README table). */
export type Parser<T> = ((text: string) => T) & { rule?: string };

const quoted = (text: string) => JSON.stringify(text);

/** Any text, as it is (the module that uses it checks it). */
export const text: Parser<string> = (t) => t;

/** Unset and empty both mean "not set". */
export const optionalText: Parser<string | undefined> = (t) => (t === "" ? undefined : t);

export const bool: Parser<boolean> = (t) => {
  if (/^(true|1|yes)$/i.test(t)) return true;
  if (/^(false|0|no|)$/i.test(t)) return false;
  throw new SettingProblem(`${quoted(t)} is not true or false`);
};

export const positiveInt: Parser<number> = (t) => {
  const n = Number(t);
  if (t.trim() === "" || !Number.isInteger(n) || n <= 0) throw new SettingProblem(`${quoted(t)} is not a positive integer`);
  return n;
};

export const nonNegativeInt: Parser<number> = (t) => {
  if (!/^[0-9]{1,6}$/.test(t)) throw new SettingProblem(`${quoted(t)} is not 0 or a positive integer`);
  return Number(t);
};

export function oneOf<const T extends string>(values: readonly T[]): Parser<T> {
  return (t) => {
    if ((values as readonly string[]).includes(t)) return t as T;
    throw new SettingProblem(`${quoted(t)} is not one of ${values.join(", ")}`);
  };
}

/** Shown in messages the way the settings are written. */
export function formatMs(ms: number): string {
  if (ms % 1000 !== 0) return `${ms}ms`;
  return `${ms / 1000}s`;
}

export interface DurationRule {
  /**
   * The smallest value that makes sense. Below it the setting is refused:
   * a 0 probe interval is a hot loop, a 0 operation timeout answers 503 to
   * every mutation.
   */
  min: number;
  /** `0` is accepted and means "off" (documented per setting). */
  zeroMeansOff?: boolean;
}

/** Milliseconds. */
export function duration(rule: DurationRule): Parser<number> {
  const documented = rule.min > 0 ? `Minimum ${formatMs(rule.min)}${rule.zeroMeansOff ? " (or 0)" : ""}.` : undefined;
  const parse = (t: string): number => {
    const ms = parseDuration(t);
    if (ms === null) throw new SettingProblem(`${quoted(t)} is not a duration (e.g. 500ms, 30s, 5m, 30d)`);
    if (ms === 0 && rule.zeroMeansOff) return 0;
    if (ms < rule.min) {
      throw new SettingProblem(`${quoted(t)} is below the minimum of ${formatMs(rule.min)}${rule.zeroMeansOff ? " (0 turns it off)" : ""}`);
    }
    return ms;
  };
  return Object.assign(parse, { rule: documented });
}

/** Bytes, Docker's binary k/m/g (the contract's form). */
export function memory(min = 1): Parser<number> {
  return (t) => {
    const n = parseMemory(t);
    if (n === null || n < min) throw new SettingProblem(`${quoted(t)} is not a size${min > 1 ? " of at least 6m" : ""} such as 512m (k, m, g are binary)`);
    return n;
  };
}

export const cpus: Parser<number> = (t) => {
  const n = Number(t);
  if (t.trim() === "" || !(n >= RESOURCE_FLOORS.cpus)) throw new SettingProblem(`${quoted(t)} is not a number of at least ${RESOURCE_FLOORS.cpus}`);
  return n;
};

/** A namespace name (a DNS label), or empty. */
export const namespaceOrEmpty: Parser<string> = (t) => {
  if (t !== "" && !GAME_ID_PATTERN.test(t)) throw new SettingProblem(`${quoted(t)} is not a namespace name (a DNS label)`);
  return t;
};

export const namespaceList: Parser<string[]> = (t) => {
  const list = t
    .split(",")
    .map((n) => n.trim())
    .filter(Boolean);
  const bad = list.find((n) => !GAME_ID_PATTERN.test(n));
  if (bad !== undefined) throw new SettingProblem(`${quoted(bad)} is not a namespace name: give a comma-separated list of DNS labels`);
  return list;
};

export const dnsDomain: Parser<string> = (t) => {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(t)) throw new SettingProblem(`${quoted(t)} is not a DNS domain such as cluster.local`);
  return t;
};

export const instanceId: Parser<string> = (t) => {
  if (!GAME_ID_PATTERN.test(t)) throw new SettingProblem(`${quoted(t)} is not a DNS label (lowercase letters, digits, '-')`);
  return t;
};

export const nonEmpty: Parser<string> = (t) => {
  if (t === "") throw new SettingProblem("must not be empty");
  return t;
};

/** A Kubernetes quantity (kept as written: it goes into a Kubernetes object as it is). */
export const kubeQuantity: Parser<string> = (t) => {
  const q = parseQuantity(t);
  if (q === null || q.num === 0n) throw new SettingProblem(`${quoted(t)} is not a positive Kubernetes quantity such as 1Gi`);
  return t;
};

/** The settings other modules read as "true", "false" or empty, strictly. */
export const strictBool: Parser<boolean> = (t) => {
  if (!/^(true|false|)$/i.test(t)) throw new SettingProblem(`${quoted(t)} is not true or false`);
  return /^true$/i.test(t);
};

/** Unset or empty: undefined. */
export const namespaceOrUnset: Parser<string | undefined> = (t) => (t === "" ? undefined : namespaceOrEmpty(t));
