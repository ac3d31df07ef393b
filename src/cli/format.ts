/** Output for people: aligned tables, ages, short ids. Scripts use -o json instead. */

/**
 * Columns padded to their widest cell (the header counts even when it is not
 * printed, so the layout does not jump with --no-headers); the last column is
 * never padded (no trailing blanks).
 */
export function table(headers: string[], rows: string[][], showHeaders = true): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("   ")
      .trimEnd();
  const lines = rows.map(line);
  if (showHeaders) lines.unshift(line(headers));
  return lines.length ? `${lines.join("\n")}\n` : "";
}

/** "key: value" lines with the keys aligned; null values print as "-". */
export function fields(pairs: [string, string | number | boolean | null | undefined][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v === null || v === undefined || v === "" ? "-" : String(v)}`).join("\n") + "\n";
}

/** kubectl-style age: 45s, 12m, 3h, 5d. */
export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "-";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "-";
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** 350ms, 12s, 5m, 3h, 30d: the largest whole unit. */
export function humanMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.ceil(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

/** "1.4s" / "350ms" between two ISO times; "-" while still running. */
export function duration(fromIso: string | null | undefined, toIso: string | null | undefined): string {
  if (!fromIso || !toIso) return "-";
  const ms = Date.parse(toIso) - Date.parse(fromIso);
  if (Number.isNaN(ms)) return "-";
  return ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`;
}

export function shortId(id: string | null | undefined, n = 12): string {
  return id ? id.slice(0, n) : "-";
}

export function truncate(text: string | null | undefined, max: number): string {
  if (!text) return "-";
  const one = text.replace(/\s+/g, " ");
  return one.length <= max ? one : `${one.slice(0, max - 1)}…`;
}

export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

export function dash(v: string | number | null | undefined): string {
  return v === null || v === undefined || v === "" ? "-" : String(v);
}
