/**
 * Reading the settings table (src/configDocs.ts) from an environment: every
 * row through its parser, every problem collected (an operator fixes them
 * all in one go), then the checks between related settings, then the
 * warnings for what is only probably wrong.
 */
import { SETTINGS, type SettingName, type SettingValues } from "./configDocs.js";
import { formatMs, SettingProblem } from "./configParsers.js";

/** The variable's text, or its documented default ("" when it has none). */
export function settingText(env: NodeJS.ProcessEnv, name: SettingName): string {
  return env[name] ?? SETTINGS[name].default ?? "";
}

export type SettingsRead = { ok: true; values: SettingValues } | { ok: false; problems: string[] };

export function readSettings(env: NodeJS.ProcessEnv): SettingsRead {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    try {
      values[name] = SETTINGS[name].parse(settingText(env, name));
    } catch (err) {
      if (!(err instanceof SettingProblem)) throw err;
      problems.push(`${name}: ${err.message}`);
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, values: values as SettingValues };
}

/**
 * Pairs that each parse but together cannot work. Leader election's rules
 * are client-go's (tools/leaderelection NewLeaderElector: "leaseDuration must
 * be greater than renewDeadline", "renewDeadline must be greater than
 * retryPeriod*JitterFactor", JitterFactor 1.2).
 */
export function crossCheckProblems(v: SettingValues): string[] {
  const problems: string[] = [];
  const must = (ok: boolean, message: string) => {
    if (!ok) problems.push(message);
  };
  must(
    v.RTMANAGER_PATCH_MIN_HEALTHY < v.RTMANAGER_PATCH_HEALTH_TIMEOUT,
    `RTMANAGER_PATCH_MIN_HEALTHY (${formatMs(v.RTMANAGER_PATCH_MIN_HEALTHY)}) must be shorter than RTMANAGER_PATCH_HEALTH_TIMEOUT (${formatMs(v.RTMANAGER_PATCH_HEALTH_TIMEOUT)}): no patch could pass its health gate, every one would be rolled back`,
  );
  must(
    v.RTMANAGER_RESTART_BACKOFF_BASE <= v.RTMANAGER_RESTART_BACKOFF_MAX,
    "RTMANAGER_RESTART_BACKOFF_BASE must not exceed RTMANAGER_RESTART_BACKOFF_MAX (the cap of the doubling delay)",
  );
  must(
    v.RTMANAGER_RETRY_BACKOFF_BASE <= v.RTMANAGER_RETRY_BACKOFF_MAX,
    "RTMANAGER_RETRY_BACKOFF_BASE must not exceed RTMANAGER_RETRY_BACKOFF_MAX (the cap of the doubling delay)",
  );
  must(v.RTMANAGER_LEASE_RENEW_DEADLINE < v.RTMANAGER_LEASE_DURATION, "RTMANAGER_LEASE_RENEW_DEADLINE must be shorter than RTMANAGER_LEASE_DURATION");
  must(
    v.RTMANAGER_LEASE_RENEW_DEADLINE > 1.2 * v.RTMANAGER_LEASE_RETRY_PERIOD,
    "RTMANAGER_LEASE_RENEW_DEADLINE must be longer than 1.2 x RTMANAGER_LEASE_RETRY_PERIOD: a leader must get at least one retry before it steps down",
  );
  return problems;
}

/** Pairs that work but probably do not do what was meant: logged at start-up, never refused. */
function softProblems(v: SettingValues): string[] {
  const warnings: string[] = [];
  if (v.RTMANAGER_PROBE_TIMEOUT > v.RTMANAGER_PROBE_INTERVAL) {
    warnings.push("RTMANAGER_PROBE_TIMEOUT is longer than RTMANAGER_PROBE_INTERVAL: a hanging engine is probed again before its last probe gave up");
  }
  if (v.RTMANAGER_PATCH_HEALTH_TIMEOUT >= v.RTMANAGER_OP_TIMEOUT) {
    warnings.push(
      "RTMANAGER_PATCH_HEALTH_TIMEOUT is not shorter than RTMANAGER_OP_TIMEOUT: a REST patch whose health gate runs long answers service_unavailable before the gate decides",
    );
  }
  return warnings;
}

/** Names that are RTMANAGER_* but belong to the tooling, not to the server. */
const TOOLING = /^RTMANAGER_(TEST_|E2E_|NODE_MATRIX$|NODE_CACHE$|RUNBOOK_BASE$)/;

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

export interface UnknownSetting {
  name: string;
  /** The closest setting, when one is close enough to be a typo of it. */
  suggestion: string | undefined;
}

/** RTMANAGER_* variables that are no setting: a misspelt one would otherwise be ignored without a word. */
export function unknownSettings(env: NodeJS.ProcessEnv): UnknownSetting[] {
  const known = Object.keys(SETTINGS);
  return Object.keys(env)
    .filter((name) => name.startsWith("RTMANAGER_") && !(name in SETTINGS) && !TOOLING.test(name))
    .sort()
    .map((name) => {
      let best: string | undefined;
      let bestDistance = Math.max(3, Math.floor(name.length / 5)) + 1;
      for (const candidate of known) {
        const d = editDistance(name, candidate);
        if (d < bestDistance) [best, bestDistance] = [candidate, d];
      }
      return { name, suggestion: best };
    });
}

/** What start-up logs as warnings: unknown variables, then doubtful pairs. Empty for a sound environment. */
export function configWarnings(env: NodeJS.ProcessEnv): string[] {
  const unknown = unknownSettings(env).map(
    ({ name, suggestion }) => `${name} is not an rtmanager setting and is ignored${suggestion ? ` (did you mean ${suggestion}?)` : ""}`,
  );
  const read = readSettings(env);
  return [...unknown, ...(read.ok ? softProblems(read.values) : [])];
}
