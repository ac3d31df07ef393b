// Restart, patch, stop and cleanup, each behind a confirmation that names the
// game and says what will happen. Each sends a fresh op id (X-Op-Id, which the
// server adopts and writes to the operation log) and shows the API's answer:
// the record, or its error envelope as the API worded it.
import { api, newOpId } from "./api.js";
import { clear, el } from "./dom.js";
import { patchProblem } from "./semver.js";

const STOP_REASONS = ["admin_request", "cancelled", "finished", "timeout"];

const ACTIONS = {
  restart: {
    label: "Restart",
    what: (id, r) => `Restart game ${id}: its engine (${r?.currentImageRef ?? "no image"}) is stopped and started again on the same image; players lose the connection for a few seconds.`,
  },
  patch: {
    label: "Patch",
    what: (id, r) => `Patch game ${id} from ${r?.currentImageRef ?? "?"} to the image below (same repository and major.minor only). The engine is replaced; if the new one is not healthy in time, the old image is restored and this image is held.`,
  },
  stop: {
    label: "Stop",
    what: (id) => `Stop game ${id}: its engine is stopped and stays stopped until it is started again. Its state directory is kept.`,
  },
  cleanup: {
    label: "Clean up",
    what: (id) => `Clean up game ${id}: its stopped container is removed. The record and the state directory stay.`,
  },
};

function send(kind, gameId, fields, opId) {
  if (kind === "restart") return api.restart(gameId, opId);
  if (kind === "stop") return api.stop(gameId, fields.reason, opId);
  if (kind === "patch") return api.patch(gameId, fields.image, opId);
  return api.cleanup(gameId, opId);
}

/**
 * Opens the confirmation for `kind` on `gameId`; `report(message, ok)` is told the outcome.
 * The dialog is the page's one <dialog>: modal, so focus stays in it and Escape cancels.
 */
export function confirmAction(kind, gameId, record, report) {
  const spec = ACTIONS[kind];
  const dialog = document.getElementById("confirm");
  const fields = document.getElementById("confirm-fields");
  const error = document.getElementById("confirm-error");
  const ok = document.getElementById("confirm-ok");
  document.getElementById("confirm-title").textContent = `${spec.label} ${gameId}?`;
  document.getElementById("confirm-text").textContent = spec.what(gameId, record);
  clear(fields);
  error.hidden = true;
  ok.textContent = `${spec.label} ${gameId}`;
  ok.disabled = false;

  let input = null;
  if (kind === "patch") {
    input = el("input", { id: "patch-image", type: "text", required: true, spellcheck: "false", autocomplete: "off", value: record?.currentImageRef ?? "" });
    fields.append(el("label", { for: "patch-image", text: "New image" }), input);
    const check = () => {
      const problem = patchProblem(record?.currentImageRef ?? "", input.value.trim());
      error.hidden = problem === null;
      error.textContent = problem ?? "";
      ok.disabled = problem !== null;
    };
    input.addEventListener("input", check);
    check();
  } else if (kind === "stop") {
    input = el("select", { id: "stop-reason" });
    for (const r of STOP_REASONS) input.append(el("option", { value: r, text: r }));
    fields.append(el("label", { for: "stop-reason", text: "Reason" }), input);
  }

  const form = document.getElementById("confirm-form");
  const cancel = document.getElementById("confirm-cancel");
  const done = () => {
    form.onsubmit = null;
    cancel.onclick = null;
    if (dialog.open) dialog.close();
  };
  cancel.onclick = done;
  form.onsubmit = async (e) => {
    e.preventDefault();
    const opId = newOpId();
    ok.disabled = true;
    error.hidden = true;
    const values = { image: input?.value?.trim(), reason: input?.value };
    try {
      const { data } = await send(kind, gameId, values, opId);
      done();
      report(`${spec.label} ${gameId}: done, status ${data.status} (op id ${opId})`, true);
    } catch (err) {
      // The API's own words, its code and the op id to look up in the operation log.
      error.textContent = typeof err.describe === "function" ? err.describe() : String(err);
      error.hidden = false;
      ok.disabled = false;
      report(`${spec.label} ${gameId} refused: ${error.textContent}`, false);
    }
  };
  dialog.showModal();
  (input ?? cancel).focus();
}

export function actionBar(gameId, getRecord, report) {
  const bar = el("div", { class: "actions", role: "group", "aria-label": `Actions on ${gameId}` });
  for (const kind of Object.keys(ACTIONS)) {
    bar.append(el("button", { type: "button", "data-action": kind, class: kind === "restart" || kind === "patch" ? "" : "danger", text: ACTIONS[kind].label, onclick: () => confirmAction(kind, gameId, getRecord(), report) }));
  }
  return bar;
}
