// One game: its record (and declaration), a live timeline from the event
// stream filtered to it (resumed with Last-Event-ID after a drop, so nothing
// is missed or shown twice), health history, the operation log with op ids,
// the plan the loop would carry out now, and its last log lines with follow.
import { actionBar } from "./actions.js";
import { api, gameStreamPath } from "./api.js";
import { openStream } from "./sse.js";
import { clear, el, healthBadge, statusBadge, time } from "./dom.js";

const MAX_TIMELINE = 500;
const MAX_LOG_LINES = 1000;
const REFRESH_MS = 300;
const HEALTH_EVENTS = new Set(["probe_failed", "probe_recovered", "container_exited", "container_oom", "crash_loop", "container_started", "node_lost", "node_lost_cleared"]);

function section(title, id, ...children) {
  return el("section", { class: "panel", "aria-labelledby": `${id}-title`, id }, el("h3", { id: `${id}-title`, text: title }), ...children);
}

function recordList(view) {
  const r = view.record;
  const d = view.declaration;
  const rows = [
    ["Status", r ? statusBadge(r.status) : "no record yet"],
    ["Health", r ? healthBadge(r.health) : "—"],
    ["Image", r?.currentImageRef ?? "—"],
    ["Desired", d ? `${d.desiredState} ${d.imageRef} (generation ${d.generation})` : "no declaration"],
    ["Observed generation", r ? String(r.observedGeneration) : "—"],
    ["Restarts", r ? String(r.restartCount) : "—"],
    ["Container", r?.currentContainerId ? r.currentContainerId.slice(0, 12) : "—"],
    ["Endpoint", r?.engineEndpoint ?? "—"],
    ["Started", time(r?.startedAt)],
    ["Last op", time(r?.lastOpAt)],
    ["In a health gate since", r?.rolloutStartedAt ? time(r.rolloutStartedAt) : "—"],
    ["Held generation", r?.heldGeneration ?? "—"],
    ["Degraded", r?.degraded ? "⚠ yes: a rollback failed" : "no"],
    ["Lost node", r?.lostNode ? `⚠ ${r.lostNode} since ${time(r.lostNodeSince)}` : "—"],
    ["Last error", r?.lastErrorCode ? `${r.lastErrorCode}: ${r.lastErrorMessage ?? ""}` : "—"],
  ];
  if (view.declarationError) rows.push(["Declaration error", `${view.declarationError.code}: ${view.declarationError.message}`]);
  const dl = el("dl", { class: "record" });
  for (const [k, v] of rows) dl.append(el("dt", { text: k }), el("dd", {}, typeof v === "string" || typeof v === "number" ? String(v) : v));
  return dl;
}

function eventItem(evt) {
  const data = evt.data && Object.keys(evt.data).length > 0 ? JSON.stringify(evt.data) : "";
  return el(
    "li",
    { "data-seq": String(evt.seq), "data-type": evt.type },
    el("time", { datetime: evt.at, text: time(evt.at) }),
    " ",
    el("strong", { text: evt.type }),
    evt.opId ? el("span", { class: "muted", text: ` op ${evt.opId}` }) : null,
    data ? el("code", { class: "data", text: ` ${data}` }) : null,
  );
}

function opsTable(items) {
  const table = el("table", { class: "ops" });
  const head = el("tr", {});
  for (const h of ["Started", "Kind", "Source", "Outcome", "Error", "Op id", "Trace id", "Generation"]) head.append(el("th", { scope: "col", text: h }));
  table.append(el("thead", {}, head));
  const body = el("tbody", {});
  for (const o of items) {
    const tr = el("tr", { "data-op": o.opId });
    for (const v of [time(o.startedAt), o.kind, o.opSource, o.outcome, o.errorCode ? `${o.errorCode}${o.message ? ": " + o.message : ""}` : "—", o.opId, traceIdOf(o.traceParent), o.generation ?? "—"]) {
      tr.append(el("td", { text: String(v) }));
    }
    body.append(tr);
  }
  table.append(body);
  return el("div", { class: "scroll-x" }, table);
}

export function gameView(root, gameId, fleet, report) {
  const ctl = new AbortController();
  let view = null;
  const recordBox = el("div", {}, el("p", { text: "Loading…" }));
  const timeline = el("ol", { class: "timeline", id: "timeline", "aria-live": "polite", "aria-relevant": "additions" });
  const health = el("ol", { class: "timeline", id: "health-history" });
  const opsBox = el("div", { id: "ops" });
  const planBox = el("pre", { id: "plan", class: "plan" });
  const logBox = el("pre", { id: "logs", class: "logs", tabindex: "0" });
  const follow = el("input", { type: "checkbox", id: "follow" });
  const streamState = el("span", { class: "muted", id: "timeline-state" });

  let refresh = null;
  const refreshSoon = () => {
    refresh ??= setTimeout(() => {
      refresh = null;
      void loadRecord();
      void loadOps();
      void loadPlan();
    }, REFRESH_MS);
  };

  root.append(
    el("p", {}, el("a", { href: "#/fleet", text: "← Fleet" })),
    el("h2", { text: `Game ${gameId}` }),
    // After an action's answer the record and its operation-log row have their final values: show them.
    actionBar(gameId, () => view?.record ?? fleet.games.get(gameId)?.record ?? null, (message, ok) => {
      report(message, ok);
      refreshSoon();
    }),
    section("Record", "record", recordBox),
    section("Timeline", "timeline-panel", streamState, timeline),
    section("Health history", "health-panel", health),
    section("Operation log", "ops-panel", opsBox),
    section("Plan (what the loop would do now)", "plan-panel", planBox),
    section("Logs", "logs-panel", el("label", {}, follow, " follow"), logBox),
  );

  const showError = (box, err) => {
    clear(box);
    box.append(el("p", { class: "error", text: err.describe ? err.describe() : String(err) }));
  };
  const loadRecord = async () => {
    try {
      view = (await api.runtime(gameId)).data;
      clear(recordBox);
      recordBox.append(recordList(view));
    } catch (err) {
      showError(recordBox, err);
    }
  };
  const loadOps = async () => {
    try {
      const { data } = await api.operations(gameId, 50);
      clear(opsBox);
      opsBox.append(data.items.length ? opsTable(data.items) : el("p", { text: "No operations yet." }));
    } catch (err) {
      showError(opsBox, err);
    }
  };
  const loadPlan = async () => {
    try {
      planBox.textContent = JSON.stringify((await api.plan(gameId)).data, null, 2);
    } catch (err) {
      planBox.textContent = err.describe ? err.describe() : String(err);
    }
  };

  let logCtl = null;
  const appendLog = (text) => {
    logBox.textContent += text;
    const lines = logBox.textContent.split("\n");
    if (lines.length > MAX_LOG_LINES) logBox.textContent = lines.slice(-MAX_LOG_LINES).join("\n");
    logBox.scrollTop = logBox.scrollHeight;
  };
  const loadLogs = async () => {
    logCtl?.abort();
    logCtl = new AbortController();
    const signal = AbortSignal.any([ctl.signal, logCtl.signal]);
    logBox.textContent = "";
    try {
      const res = await api.logs(gameId, { tail: 100, follow: follow.checked, signal });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        appendLog(value);
      }
    } catch (err) {
      if (!signal.aborted) logBox.textContent = err.describe ? err.describe() : String(err);
    }
  };
  follow.addEventListener("change", () => void loadLogs());


  // cursor=0: the stored history of this game first (the server filters it), then live events.
  openStream(
    `${gameStreamPath(gameId)}&cursor=0`,
    {
      event: (evt) => {
        timeline.prepend(eventItem(evt));
        while (timeline.childElementCount > MAX_TIMELINE) timeline.lastElementChild.remove();
        if (HEALTH_EVENTS.has(evt.type)) health.prepend(eventItem(evt));
        refreshSoon();
      },
      diagnostic: (d) => timeline.prepend(el("li", { class: "muted", text: `stream: ${d.code}: ${d.message}` })),
      state: (s, detail) => {
        streamState.textContent = s === "live" ? "● live" : s === "reconnecting" ? "↻ reconnecting…" : `✗ ${detail?.describe ? detail.describe() : "stopped"}`;
        streamState.dataset.state = s;
      },
    },
    ctl.signal,
  );
  void loadRecord();
  void loadOps();
  void loadPlan();
  void loadLogs();
  return () => {
    ctl.abort();
    if (refresh) clearTimeout(refresh);
  };
}

/** The trace id of a stored W3C traceparent (version-traceid-parentid-flags), the part a tracing UI searches by. */
function traceIdOf(traceParent) {
  return typeof traceParent === "string" ? (traceParent.split("-")[1] ?? traceParent) : "—";
}
