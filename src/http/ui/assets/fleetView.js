// The fleet view: counts by status, and a table of every game, sortable and
// filterable, that renders only the rows in sight (10,000 games cost the DOM
// about as much as 30).
import { ago, clear, el, healthBadge, placement, statusBadge } from "./dom.js";

const ROW_HEIGHT = 36;
const OVERSCAN = 8;

const COLUMNS = [
  { key: "game", label: "Game", get: (g) => g.record.gameId, cell: (g) => el("a", { href: `#/game/${encodeURIComponent(g.record.gameId)}`, text: g.record.gameId }) },
  { key: "status", label: "Status", get: (g) => g.record.status, cell: (g) => statusBadge(g.record.status) },
  { key: "image", label: "Image", get: (g) => g.record.currentImageRef ?? "", cell: (g) => g.record.currentImageRef ?? "—", narrow: true },
  { key: "health", label: "Health", get: (g) => g.record.health, cell: (g) => healthBadge(g.record.health) },
  { key: "restarts", label: "Restarts", get: (g) => g.record.restartCount, cell: (g) => String(g.record.restartCount), numeric: true },
  {
    key: "lastOp",
    label: "Last op",
    get: (g) => g.record.lastOpAt,
    cell: (g) => `${g.lastEvent ? g.lastEvent.type + " · " : ""}${ago(g.record.lastOpAt)}`,
    narrow: true,
  },
  { key: "host", label: "Node / host", get: (g) => placement(g.record), cell: (g) => placement(g.record), narrow: true },
  { key: "lostNode", label: "Lost node", get: (g) => g.record.lostNode ?? "", cell: (g) => (g.record.lostNode ? `⚠ ${g.record.lostNode}` : "—") },
  { key: "held", label: "Held gen", get: (g) => g.record.heldGeneration ?? -1, cell: (g) => (g.record.heldGeneration ?? null) === null ? "—" : `held ${g.record.heldGeneration}`, numeric: true },
];

const STATUS_FILTERS = {
  all: () => true,
  running: (r) => r.status === "running",
  stopped: (r) => r.status === "stopped",
  removed: (r) => r.status === "removed",
  unhealthy: (r) => r.health === "unhealthy",
  degraded: (r) => r.degraded,
  held: (r) => r.heldGeneration !== null && r.heldGeneration !== undefined,
  gated: (r) => Boolean(r.rolloutStartedAt),
  lostNode: (r) => Boolean(r.lostNode),
};

/** Pure: the rows to show, filtered and sorted. Exported for the tests' and the benchmark's sake. */
export function selectRows(games, { status = "all", text = "", sortKey = "game", descending = false }) {
  const keep = STATUS_FILTERS[status] ?? STATUS_FILTERS.all;
  const needle = text.trim().toLowerCase();
  const col = COLUMNS.find((c) => c.key === sortKey) ?? COLUMNS[0];
  const rows = [];
  for (const g of games) {
    const r = g.record;
    if (!keep(r)) continue;
    if (needle && !`${r.gameId} ${r.currentImageRef ?? ""} ${r.status} ${r.health} ${r.lostNode ?? ""} ${r.engineEndpoint ?? ""}`.toLowerCase().includes(needle)) continue;
    rows.push(g);
  }
  rows.sort((a, b) => {
    const x = col.get(a);
    const y = col.get(b);
    const c = x < y ? -1 : x > y ? 1 : a.record.gameId < b.record.gameId ? -1 : 1;
    return descending ? -c : c;
  });
  return rows;
}

export function fleetView(root, fleet) {
  const params = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const state = { status: params.get("status") ?? "all", text: params.get("q") ?? "", sortKey: "game", descending: false, active: 0 };
  let rows = [];

  const counts = el("ul", { class: "counts", "aria-label": "Games by status" });
  const statusSel = el("select", { id: "status-filter" });
  for (const k of Object.keys(STATUS_FILTERS)) statusSel.append(el("option", { value: k, text: k === "lostNode" ? "lost node" : k }));
  statusSel.value = state.status;
  const textIn = el("input", { id: "text-filter", type: "search", placeholder: "game, image, host…", value: state.text, autocomplete: "off" });
  const shown = el("span", { class: "shown", role: "status", "aria-live": "polite" });
  const filters = el(
    "div",
    { class: "filters" },
    el("label", { for: "status-filter", text: "Status " }),
    statusSel,
    el("label", { for: "text-filter", text: "Search " }),
    textIn,
    shown,
  );

  const header = el("div", { class: "vt-row vt-head", role: "row" });
  const headButtons = new Map();
  for (const c of COLUMNS) {
    const b = el("button", { type: "button", class: "sort", text: c.label });
    b.addEventListener("click", () => {
      state.descending = state.sortKey === c.key ? !state.descending : false;
      state.sortKey = c.key;
      recompute();
    });
    headButtons.set(c.key, b);
    header.append(el("div", { role: "columnheader", class: `vt-cell col-${c.key}${c.narrow ? " narrow" : ""}` }, b));
  }
  const spacer = el("div", { class: "vt-spacer", role: "rowgroup" });
  const viewport = el("div", { class: "vt-viewport", tabindex: "0", "aria-label": "Games; arrow keys move, Enter opens" }, spacer);
  const table = el("div", { class: "vt", role: "table", "aria-label": "Games", id: "fleet-table" }, el("div", { role: "rowgroup" }, header), viewport);
  root.append(el("h2", { text: "Fleet" }), counts, filters, table);

  const renderCounts = () => {
    clear(counts);
    const c = fleet.counts();
    const items = [
      ["total", "all", c.total],
      ["running", "running", c.running],
      ["stopped", "stopped", c.stopped],
      ["removed", "removed", c.removed],
      ["unhealthy", "unhealthy", c.unhealthy],
      ["in a gate", "gated", c.gated],
      ["held", "held", c.held],
      ["degraded", "degraded", c.degraded],
      ["lost node", "lostNode", c.lostNode],
    ];
    for (const [label, filter, n] of items) {
      const b = el("button", { type: "button", class: `count count-${filter}`, "data-count": filter, "aria-pressed": String(state.status === filter) }, el("strong", { text: String(n) }), ` ${label}`);
      b.addEventListener("click", () => {
        state.status = filter;
        statusSel.value = filter;
        recompute();
      });
      counts.append(el("li", {}, b));
    }
  };

  let frame = 0;
  const renderRows = () => {
    frame = 0;
    const top = viewport.scrollTop;
    const height = viewport.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(rows.length, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    clear(spacer);
    spacer.style.height = `${rows.length * ROW_HEIGHT}px`;
    for (let i = first; i < last; i++) {
      const g = rows[i];
      const row = el("div", {
        class: `vt-row${i === state.active ? " active" : ""}`,
        role: "row",
        "aria-rowindex": String(i + 2),
        "data-game": g.record.gameId,
        id: `row-${i}`,
      });
      row.style.transform = `translateY(${i * ROW_HEIGHT}px)`;
      for (const c of COLUMNS) row.append(el("div", { role: "cell", class: `vt-cell col-${c.key}${c.narrow ? " narrow" : ""}${c.numeric ? " num" : ""}` }, c.cell(g)));
      spacer.append(row);
    }
    table.setAttribute("aria-rowcount", String(rows.length + 1));
    if (rows.length > 0) viewport.setAttribute("aria-activedescendant", `row-${state.active}`);
    else viewport.removeAttribute("aria-activedescendant");
  };
  const schedule = () => {
    frame ||= requestAnimationFrame(renderRows);
  };

  const recompute = () => {
    rows = selectRows(fleet.games.values(), state);
    state.active = Math.min(state.active, Math.max(0, rows.length - 1));
    shown.textContent = `${rows.length} of ${fleet.games.size} shown`;
    for (const [key, b] of headButtons) {
      b.parentElement.setAttribute("aria-sort", key === state.sortKey ? (state.descending ? "descending" : "ascending") : "none");
    }
    renderCounts();
    renderRows();
  };

  statusSel.addEventListener("change", () => {
    state.status = statusSel.value;
    recompute();
  });
  textIn.addEventListener("input", () => {
    state.text = textIn.value;
    recompute();
  });
  viewport.addEventListener("scroll", schedule, { passive: true });
  viewport.addEventListener("keydown", (e) => {
    const page = Math.max(1, Math.floor(viewport.clientHeight / ROW_HEIGHT) - 1);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page, Home: -Infinity, End: Infinity };
    if (e.key === "Enter" && rows[state.active]) {
      location.hash = `#/game/${encodeURIComponent(rows[state.active].record.gameId)}`;
      return;
    }
    if (!(e.key in moves) || rows.length === 0) return;
    e.preventDefault();
    state.active = Math.max(0, Math.min(rows.length - 1, state.active + moves[e.key]));
    const y = state.active * ROW_HEIGHT;
    if (y < viewport.scrollTop) viewport.scrollTop = y;
    else if (y + ROW_HEIGHT > viewport.scrollTop + viewport.clientHeight) viewport.scrollTop = y + ROW_HEIGHT - viewport.clientHeight;
    renderRows();
  });

  recompute();
  const unsubscribe = fleet.subscribe((kind) => {
    if (kind === "records") recompute();
  });
  return () => {
    unsubscribe();
    if (frame) cancelAnimationFrame(frame);
  };
}
