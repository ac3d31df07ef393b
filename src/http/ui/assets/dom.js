// Small DOM helpers. Text goes in through textContent only: a game id, an
// image or a log line is never parsed as HTML.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
}

/** Status as a word and a shape, never by color alone. */
const STATUS_MARK = { running: "▶", stopped: "■", removed: "✕" };
export function statusBadge(status) {
  return el("span", { class: `badge status-${status}` }, el("span", { "aria-hidden": "true", text: STATUS_MARK[status] ?? "?" }), ` ${status}`);
}

const HEALTH_MARK = { healthy: "✓", unhealthy: "✗", unknown: "?" };
export function healthBadge(health) {
  return el("span", { class: `badge health-${health}` }, el("span", { "aria-hidden": "true", text: HEALTH_MARK[health] ?? "?" }), ` ${health}`);
}

export function time(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function ago(iso, now = Date.now()) {
  if (!iso) return "—";
  const s = Math.round((now - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** Where a game runs: its lost node, else the endpoint host. */
export function placement(record) {
  if (!record.engineEndpoint) return "—";
  try {
    return new URL(record.engineEndpoint).host;
  } catch {
    return record.engineEndpoint;
  }
}
