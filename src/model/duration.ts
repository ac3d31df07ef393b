/**
 * Durations in configuration: "1500ms", "30s", "5m", "2h", "30d", or a bare
 * number of seconds. Returns milliseconds, or null when unparseable.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) return null;
  const value = Number(m[1]);
  const unit = m[2] ?? "s";
  const ms = value * (UNIT_MS[unit] ?? 1000);
  return Number.isFinite(ms) ? Math.round(ms) : null;
}

/** "512m" -> bytes; k, m, g are binary multiples as Docker reads them. */
export function parseMemory(text: string): number | null {
  const m = /^([1-9][0-9]*)([kmg]?)$/i.exec(text.trim());
  if (!m) return null;
  const mult: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  return Number(m[1]) * (mult[(m[2] ?? "").toLowerCase()] ?? 1);
}
