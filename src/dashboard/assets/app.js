// @ts-check
/**
 * The dashboard page's script, part 5 of 5 (see dom.js): the page's state, the stats bar,
 * routing by #hash, refreshing (on each tick of the live stream) and the start.
 */
/* exported state, changed, resetPages, go, render, refresh */

/**
 * @typedef {"actors" | "actor" | "channels" | "groups" | "group" | "workers"} ViewName
 * @typedef {{ view: ViewName, id?: string }} Route
 * @typedef {{ mount: (view: HTMLElement) => void, load: () => Promise<void> }} View
 * @typedef {{ status: string[], actor: string, idContains: string, limit: string }} Filter
 */

const state = {
  /** @type {Route} */
  route: { view: "actors" },
  /** @type {Filter} */
  filter: { status: [], actor: "", idContains: "", limit: "50" },
  /** @type {string | null} */
  cursor: null,
  /** @type {(string | null)[]} */
  cursors: [],
  /** @type {string | null} */
  channelCursor: null,
  /** @type {(string | null)[]} */
  channelCursors: [],
  paused: false,
  /** @type {Record<string, string | null>} */
  lastText: {},
};

/**
 * Renders only when the answer changed, so open details and selections survive a refresh.
 * @param {string} key
 * @param {string} text
 */
function changed(key, text) {
  if (state.lastText[key] === text) return false;
  state.lastText[key] = text;
  return true;
}
/** @param {string | null} msg */
function setError(msg) {
  const b = $("banner");
  b.textContent = msg || "";
  b.hidden = !msg;
}

function resetPages() {
  state.cursor = null;
  state.cursors = [];
}

/** @type {Record<ViewName, View>} */
const views = { ...actorViews, ...systemViews };

// ---- stats bar ----------------------------------------------------------------------------
async function loadStats() {
  const r = await api("api/stats");
  if (!changed("stats", r.text)) return;
  const { stats: s, outbox: o } = /** @type {{ stats: Stats, outbox: OutboxCounts }} */ (r.body);
  const items = STATUSES.map((st) =>
    h(
      "button",
      {
        className: "stat",
        type: "button",
        title: "list " + st + " actors",
        onclick: () => {
          state.filter.status = [st];
          resetPages();
          go("#actors");
        },
      },
      h("div", { className: "k" }, st),
      h("div", { className: "v" }, String(s.byStatus[st] || 0)),
    ),
  );
  /**
   * @param {string} k
   * @param {string} v
   * @param {boolean} [alert]
   */
  const stat = (k, v, alert) =>
    h(
      "div",
      { className: alert ? "stat alert" : "stat" },
      h("div", { className: "k" }, k),
      h("div", { className: "v" }, v),
    );
  items.push(stat("run p50", s.durationMs.p50 === null ? "–" : num(s.durationMs.p50, 0) + " ms"));
  items.push(stat("run p95", s.durationMs.p95 === null ? "–" : num(s.durationMs.p95, 0) + " ms"));
  items.push(stat("done/s", s.throughputPerSec === null ? "–" : num(s.throughputPerSec, 2)));
  items.push(stat("outbox pending", String(o.pending + o.processing)));
  items.push(stat("dead letters", String(o.dead), o.dead > 0));
  $("stats").replaceChildren(...items);
}

// ---- routing, refresh, live ---------------------------------------------------------------
/**
 * A view of this page (own keys only: `#constructor` is not one).
 * @param {string} name
 * @returns {name is ViewName}
 */
function isView(name) {
  return Object.prototype.hasOwnProperty.call(views, name);
}
/** @returns {Route} */
function parseHash() {
  const hash = location.hash.replace(/^#/, "");
  const slash = hash.indexOf("/");
  const view = slash < 0 ? hash : hash.slice(0, slash);
  /** @type {string | null} */
  let id = null;
  if (slash >= 0) {
    try {
      id = decodeURIComponent(hash.slice(slash + 1));
    } catch {
      id = null;
    }
  }
  if ((view === "actor" || view === "group") && id) return { view, id };
  return { view: isView(view) && view !== "actor" && view !== "group" ? view : "actors" };
}
/** @param {string} hash */
function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function render() {
  state.route = parseHash();
  state.lastText = {};
  const tab =
    state.route.view === "actor" ? "actors" : state.route.view === "group" ? "groups" : state.route.view;
  for (const a of Array.from(document.querySelectorAll("nav a")))
    a.className = a.getAttribute("href") === "#" + tab ? "active" : "";
  const view = $("view");
  view.replaceChildren();
  views[state.route.view].mount(view);
  void refresh();
}

let inflight = false;
let again = false;
async function refresh() {
  if (inflight) {
    again = true;
    return;
  }
  inflight = true;
  try {
    await Promise.all([loadStats(), views[state.route.view].load()]);
    setError(null);
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    setError(messageOf(e));
  } finally {
    inflight = false;
  }
  if (again) {
    again = false;
    void refresh();
  }
}

/**
 * @param {"on" | "off" | "paused"} kind
 * @param {string} text
 */
function setLive(kind, text) {
  $("dot").className = "dot " + kind;
  $("livetext").textContent = text;
}
function connect() {
  const url = new URL("api/events", location.href);
  url.search = "";
  if (token) url.searchParams.set("token", token);
  const es = new EventSource(url);
  es.addEventListener("tick", () => {
    if (state.paused) return;
    setLive("on", "live");
    void refresh();
  });
  es.onerror = () => {
    if (!state.paused) setLive("off", "reconnecting…");
  };
}

$("pause").addEventListener("click", () => {
  state.paused = !state.paused;
  $("pause").textContent = state.paused ? "Resume" : "Pause";
  if (state.paused) setLive("paused", "paused");
  else {
    setLive("on", "live");
    void refresh();
  }
});
$("reload").addEventListener("click", () => {
  void refresh();
});
window.addEventListener("hashchange", render);
render();
connect();
