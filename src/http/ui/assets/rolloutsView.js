// Rollouts: games in a health gate with the time left, and patch outcomes
// (rolled back, held, quarantined, degraded) as the event stream brings them.
// The gate's length is the plan's (GET .../plan answers the open gate with its
// timeoutMs), read once per gate; the clock runs here.
import { api } from "./api.js";
import { clear, el, time } from "./dom.js";

export function rolloutsView(root, fleet) {
  const timeouts = new Map();
  const gates = el("tbody", {});
  const held = el("ul", { id: "held", class: "plain" });
  const outcomes = el("ol", { id: "outcomes", class: "timeline" });
  const gateTable = el("table", { id: "gates", class: "ops" }, el("thead", {}, el("tr", {}, ...["Game", "Image", "Previous", "In gate since", "Time left"].map((h) => el("th", { scope: "col", text: h })))), gates);
  root.append(
    el("h2", { text: "Rollouts" }),
    el("section", { class: "panel", "aria-labelledby": "gates-title" }, el("h3", { id: "gates-title", text: "In a health gate" }), el("div", { class: "scroll-x" }, gateTable)),
    el("section", { class: "panel", "aria-labelledby": "outcomes-title" }, el("h3", { id: "outcomes-title", text: "Outcomes as they happen" }), outcomes),
    el("section", { class: "panel", "aria-labelledby": "held-title" }, el("h3", { id: "held-title", text: "Held and degraded" }), held),
  );

  const gameLink = (id) => el("a", { href: `#/game/${encodeURIComponent(id)}`, text: id });
  const left = (r) => {
    const timeout = timeouts.get(`${r.gameId}@${r.rolloutStartedAt}`);
    if (timeout === undefined) return "…";
    const ms = new Date(r.rolloutStartedAt).getTime() + timeout - Date.now();
    return ms > 0 ? `${Math.ceil(ms / 1000)} s left` : "verdict due";
  };
  const learnTimeout = async (r) => {
    const key = `${r.gameId}@${r.rolloutStartedAt}`;
    if (timeouts.has(key)) return;
    timeouts.set(key, undefined);
    try {
      const { data } = await api.plan(r.gameId);
      if (data.gate && typeof data.gate.timeoutMs === "number") timeouts.set(key, data.gate.timeoutMs);
    } catch {
      // no plan: the time left stays unknown ("…")
    }
  };

  const render = () => {
    clear(gates);
    const gated = [...fleet.games.values()].map((g) => g.record).filter((r) => r.rolloutStartedAt);
    gated.sort((a, b) => (a.rolloutStartedAt < b.rolloutStartedAt ? -1 : 1));
    for (const r of gated) {
      void learnTimeout(r);
      gates.append(el("tr", { "data-game": r.gameId }, el("td", {}, gameLink(r.gameId)), el("td", { text: r.currentImageRef ?? "—" }), el("td", { text: r.previousImageRef ?? "—" }), el("td", { text: time(r.rolloutStartedAt) }), el("td", { class: "left", text: left(r) })));
    }
    if (gated.length === 0) gates.append(el("tr", {}, el("td", { colspan: "5", text: "No game is in a health gate." })));

    clear(outcomes);
    for (const e of fleet.outcomes) {
      outcomes.append(el("li", { "data-type": e.type }, el("time", { datetime: e.at, text: time(e.at) }), " ", gameLink(e.gameId), " ", el("strong", { text: e.type }), e.data && Object.keys(e.data).length ? el("code", { class: "data", text: ` ${JSON.stringify(e.data)}` }) : null));
    }
    if (fleet.outcomes.length === 0) outcomes.append(el("li", { class: "muted", text: "Nothing yet since this page opened." }));

    clear(held);
    for (const { record: r } of fleet.games.values()) {
      if (r.heldGeneration !== null && r.heldGeneration !== undefined) held.append(el("li", {}, gameLink(r.gameId), ` generation ${r.heldGeneration} held (runs ${r.currentImageRef ?? "—"})`));
      if (r.degraded) held.append(el("li", {}, gameLink(r.gameId), " ⚠ degraded: a rollback failed"));
    }
    if (!held.firstChild) held.append(el("li", { class: "muted", text: "None." }));
  };
  render();
  const unsubscribe = fleet.subscribe((kind) => kind === "records" && render());
  const tick = setInterval(() => {
    for (const td of gates.querySelectorAll("tr[data-game]")) {
      const r = fleet.games.get(td.dataset.game)?.record;
      if (r?.rolloutStartedAt) td.querySelector(".left").textContent = left(r);
    }
  }, 1000);
  return () => {
    unsubscribe();
    clearInterval(tick);
  };
}
