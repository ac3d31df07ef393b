// The console's entry: the token, the fleet stream and a hash router over
// three views (#/fleet, #/game/<id>, #/rollouts). A refused token (401/403)
// ends every stream and clears the page: no data is shown without one.
import { api, forgetToken, storeToken, storedToken } from "./api.js";
import { clear } from "./dom.js";
import { Fleet } from "./fleet.js";
import { fleetView } from "./fleetView.js";
import { gameView } from "./gameView.js";
import { rolloutsView } from "./rolloutsView.js";

const $ = (id) => document.getElementById(id);
let session = null;

function banner(message, ok = false) {
  const b = $("banner");
  b.textContent = message;
  b.className = `banner ${ok ? "ok" : "bad"}`;
  b.hidden = !message;
}

function showLogin(message) {
  session?.ctl.abort();
  session?.teardown?.();
  session = null;
  clear($("view"));
  $("login").hidden = false;
  $("sign-out").hidden = true;
  $("stream-state").textContent = "";
  banner(message ?? "");
  $("token-input").focus();
}

function route() {
  if (!session) return;
  session.teardown?.();
  const view = $("view");
  clear(view);
  const hash = location.hash.split("?")[0];
  for (const a of document.querySelectorAll("nav a")) a.removeAttribute("aria-current");
  const report = (message, ok) => banner(message, ok);
  if (hash.startsWith("#/game/")) {
    session.teardown = gameView(view, decodeURIComponent(hash.slice("#/game/".length)), session.fleet, report);
  } else if (hash === "#/rollouts") {
    document.querySelector('nav a[data-view="rollouts"]').setAttribute("aria-current", "page");
    session.teardown = rolloutsView(view, session.fleet);
  } else {
    document.querySelector('nav a[data-view="fleet"]').setAttribute("aria-current", "page");
    session.teardown = fleetView(view, session.fleet);
  }
  $("main").focus({ preventScroll: true });
}

async function begin() {
  const hadToken = storedToken() !== null;
  performance.mark("rtm:start");
  try {
    await api.version();
    performance.mark("rtm:version");
  } catch (err) {
    forgetToken();
    if (err.status === 401 && !hadToken) return showLogin("");
    const why = err.status === 401 ? "The token was refused" : err.status === 403 ? "This page's address or origin was refused" : "rtmanager did not answer";
    showLogin(`${why}: ${err.describe ? err.describe() : String(err)}`);
    return;
  }
  $("login").hidden = true;
  $("sign-out").hidden = !storedToken();
  banner("");
  const ctl = new AbortController();
  const fleet = new Fleet();
  fleet.onFailed = (err) => {
    forgetToken();
    showLogin(`The event stream was refused: ${err.describe ? err.describe() : String(err)}`);
  };
  fleet.subscribe((kind) => {
    if (kind !== "state") return;
    const s = fleet.state;
    $("stream-state").textContent = s === "live" ? "● live" : s === "reconnecting" ? "↻ reconnecting…" : "…";
    $("stream-state").dataset.state = s;
  });
  session = { ctl, fleet, teardown: null };
  fleet.start(ctl.signal);
  route();
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const token = $("token-input").value.trim();
  $("token-input").value = "";
  if (!token) return;
  storeToken(token);
  void begin();
});
$("sign-out").addEventListener("click", () => {
  forgetToken();
  showLogin("Token forgotten.");
});
window.addEventListener("hashchange", route);
// Without a stored token the first call goes out bare: a server without a token answers it, one with a token asks for it.
void begin();
