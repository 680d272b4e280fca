/**
 * The dashboard's one page: static HTML, CSS and JS, served inline (no build step, nothing
 * fetched from elsewhere). It carries no data: the script fetches the JSON API and renders
 * it with DOM nodes and textContent only (never innerHTML), so whatever actor inputs,
 * outputs, ids or channel names hold is shown as text. A Content-Security-Policy allows
 * exactly this script and this style (by hash) and requests to the same origin.
 */
import { createHash } from "node:crypto";

const STYLE = String.raw`
:root { --bg: #fff; --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --panel: #f7f8fa; --accent: #2f5bd3;
  --ok: #1a7f37; --warn: #9a6700; --bad: #c62828; --info: #2f5bd3; --grey: #667085; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #12151b; --fg: #e6e8ec; --muted: #98a2b3; --line: #2a303b; --panel: #1a1f27; --accent: #7fa2ff;
    --ok: #56d364; --warn: #e3b341; --bad: #ff7b72; --info: #7fa2ff; --grey: #98a2b3; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; align-items: center; gap: 16px; padding: 10px 20px; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
header h1 { font-size: 16px; margin: 0; }
nav a { margin-right: 12px; color: var(--muted); text-decoration: none; font-weight: 500; }
nav a.active { color: var(--fg); border-bottom: 2px solid var(--accent); }
.spacer { flex: 1; }
.live { font-size: 12px; color: var(--muted); display: flex; align-items: center; gap: 6px; }
.dot { width: 8px; height: 8px; border-radius: 50%; background: var(--grey); display: inline-block; }
.dot.on { background: var(--ok); } .dot.off { background: var(--bad); } .dot.paused { background: var(--warn); }
main { padding: 16px 20px 40px; }
.stats { display: flex; gap: 8px; flex-wrap: wrap; padding: 10px 20px; border-bottom: 1px solid var(--line); background: var(--panel); }
.stat { border: 1px solid var(--line); border-radius: 6px; padding: 4px 10px; background: var(--bg); min-width: 84px; }
.stat .k { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
.stat .v { font-size: 16px; font-weight: 600; font-variant-numeric: tabular-nums; }
button.stat { cursor: pointer; text-align: left; color: inherit; font: inherit; }
.stat.alert .v { color: var(--bad); }
table { border-collapse: collapse; width: 100%; margin: 8px 0 12px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.mono, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; word-break: break-all; }
a { color: var(--accent); }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre.block { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px; max-height: 320px; overflow: auto; }
.badge { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: 12px; border: 1px solid currentColor; }
.s-running { color: var(--info); } .s-waiting { color: var(--grey); } .s-compensating { color: var(--warn); }
.s-completed { color: var(--ok); } .s-failed { color: var(--bad); } .s-cancelled { color: var(--warn); }
.muted { color: var(--muted); }
.error { color: var(--bad); }
.banner { margin: 0 0 12px; padding: 8px 12px; border: 1px solid var(--bad); border-radius: 6px; color: var(--bad); }
.banner[hidden] { display: none; }
form.filters { display: flex; gap: 12px; align-items: end; flex-wrap: wrap; margin-bottom: 8px; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 2px; }
form.filters fieldset { border: 1px solid var(--line); border-radius: 6px; padding: 2px 8px 6px; margin: 0; display: flex; gap: 8px; }
form.filters fieldset label { flex-direction: row; align-items: center; gap: 3px; color: var(--fg); }
input[type=text], select { padding: 4px 6px; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); font: inherit; }
button { padding: 4px 10px; border: 1px solid var(--line); border-radius: 4px; background: var(--panel); color: var(--fg); cursor: pointer; font: inherit; }
button:disabled { opacity: .5; cursor: default; }
.pager { display: flex; gap: 8px; align-items: center; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 8px 0 16px; }
dl.fields dt { color: var(--muted); } dl.fields dd { margin: 0; }
h2 { font-size: 15px; margin: 16px 0 6px; }
details summary { cursor: pointer; }
`;

// Plain browser JavaScript (no template literals: this file is one).
const SCRIPT = String.raw`
(function () {
  "use strict";
  var token = new URLSearchParams(location.search).get("token");
  var STATUSES = ["running", "waiting", "compensating", "completed", "failed", "cancelled"];
  var state = {
    route: { view: "actors" },
    filter: { status: [], actor: "", idContains: "", limit: "50" },
    cursor: null, cursors: [],
    channelCursor: null, channelCursors: [],
    paused: false,
    lastText: {},
  };
  var $ = function (id) { return document.getElementById(id); };

  // ---- DOM helpers: text only ------------------------------------------------------------
  function h(tag, props) {
    var el = document.createElement(tag);
    if (props) Object.keys(props).forEach(function (k) {
      var v = props[k];
      if (v === undefined || v === null || v === false) return;
      if (k === "text") el.textContent = String(v);
      else if (k === "className") el.className = v;
      else if (k === "onclick") el.addEventListener("click", v);
      else if (k === "onsubmit") el.addEventListener("submit", v);
      else if (k === "href") {
        if (String(v).charAt(0) !== "#") throw new Error("only in-page links");
        el.setAttribute("href", String(v));
      } else el.setAttribute(k, String(v));
    });
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el, c) {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { add(el, x); }); return; }
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  function link(hash, text, cls) { return h("a", { href: hash, className: cls || "" }, text); }
  function actorLink(id) { return link("#actor/" + encodeURIComponent(id), id, "mono"); }
  function badge(status) {
    var cls = STATUSES.indexOf(status) >= 0 ? "badge s-" + status : "badge";
    return h("span", { className: cls }, status);
  }
  function table(headers, rows, empty) {
    if (rows.length === 0) return h("p", { className: "muted" }, empty || "nothing");
    return h("table", null,
      h("thead", null, h("tr", null, headers.map(function (x) {
        return h("th", { className: x.charAt(0) === "#" ? "num" : "" }, x.charAt(0) === "#" ? x.slice(1) : x);
      }))),
      h("tbody", null, rows));
  }
  function json(v) { return v === undefined ? "" : JSON.stringify(v); }
  function pretty(v) { return v === undefined ? "" : JSON.stringify(v, null, 2); }
  function preview(v, n) {
    var s = json(v);
    return s.length > n ? s.slice(0, n) + "…" : s;
  }
  /** A value: short ones inline, long ones folded. */
  function valueCell(v) {
    var s = json(v);
    if (s.length <= 120) return h("pre", null, s);
    return h("details", null, h("summary", { className: "mono" }, s.slice(0, 100) + "…"), h("pre", { className: "block" }, pretty(v)));
  }
  function when(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }
  function age(ms) {
    if (ms === null || ms === undefined) return "";
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }
  function sinceIso(iso) { return iso ? age(Date.now() - new Date(iso).getTime()) : ""; }
  function num(v, digits) {
    if (v === null || v === undefined) return "–";
    return digits === undefined ? String(v) : Number(v).toFixed(digits);
  }

  // ---- the API ----------------------------------------------------------------------------
  async function api(path, query) {
    var url = new URL(path, location.href);
    url.search = "";
    if (query) Object.keys(query).forEach(function (k) {
      var v = query[k];
      if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
    });
    var headers = { accept: "application/json" };
    if (token) headers.authorization = "Bearer " + token;
    var res = await fetch(url, { headers: headers, cache: "no-store" });
    var text = await res.text();
    var body = null;
    try { body = JSON.parse(text); } catch (e) { body = null; }
    if (!res.ok) {
      var err = new Error(body && body.error ? body.error.code + ": " + body.error.message : "HTTP " + res.status);
      err.status = res.status;
      throw err;
    }
    return { body: body, text: text };
  }
  /** Renders only when the answer changed, so open details and selections survive a refresh. */
  function changed(key, text) {
    if (state.lastText[key] === text) return false;
    state.lastText[key] = text;
    return true;
  }
  function setError(msg) {
    var b = $("banner");
    b.textContent = msg || "";
    b.hidden = !msg;
  }

  // ---- stats bar ----------------------------------------------------------------------------
  async function loadStats() {
    var r = await api("api/stats");
    if (!changed("stats", r.text)) return;
    var s = r.body.stats, o = r.body.outbox;
    var items = STATUSES.map(function (st) {
      return h("button", { className: "stat", type: "button", title: "list " + st + " actors",
        onclick: function () { state.filter.status = [st]; resetPages(); go("#actors"); } },
        h("div", { className: "k" }, st), h("div", { className: "v" }, String(s.byStatus[st] || 0)));
    });
    var stat = function (k, v, alert) {
      return h("div", { className: alert ? "stat alert" : "stat" }, h("div", { className: "k" }, k), h("div", { className: "v" }, v));
    };
    items.push(stat("run p50", s.durationMs.p50 === null ? "–" : num(s.durationMs.p50, 0) + " ms"));
    items.push(stat("run p95", s.durationMs.p95 === null ? "–" : num(s.durationMs.p95, 0) + " ms"));
    items.push(stat("done/s", s.throughputPerSec === null ? "–" : num(s.throughputPerSec, 2)));
    items.push(stat("outbox pending", String(o.pending + o.processing)));
    items.push(stat("dead letters", String(o.dead), o.dead > 0));
    $("stats").replaceChildren.apply($("stats"), items);
  }

  // ---- views --------------------------------------------------------------------------------
  function resetPages() { state.cursor = null; state.cursors = []; }

  var views = {
    actors: {
      mount: function (view) {
        var f = state.filter;
        var boxes = STATUSES.map(function (st) {
          return h("label", null, h("input", { type: "checkbox", name: "status", value: st, checked: f.status.indexOf(st) >= 0 }), st);
        });
        var form = h("form", { className: "filters", onsubmit: function (ev) {
            ev.preventDefault();
            f.status = Array.prototype.filter.call(form.querySelectorAll("input[name=status]"), function (b) { return b.checked; })
              .map(function (b) { return b.value; });
            f.actor = form.querySelector("[name=actor]").value.trim();
            f.idContains = form.querySelector("[name=idContains]").value.trim();
            f.limit = form.querySelector("[name=limit]").value;
            resetPages();
            refresh();
          } },
          h("fieldset", null, h("legend", { className: "muted" }, "status"), boxes),
          h("label", null, "actor type", h("input", { type: "text", name: "actor", value: f.actor, size: 14 })),
          h("label", null, "id contains", h("input", { type: "text", name: "idContains", value: f.idContains, size: 14 })),
          h("label", null, "per page", h("select", { name: "limit" }, ["25", "50", "100", "250"].map(function (n) {
            return h("option", { value: n, selected: n === f.limit }, n);
          }))),
          h("button", { type: "submit" }, "Apply"),
          h("button", { type: "button", onclick: function () {
            state.filter = { status: [], actor: "", idContains: "", limit: "50" }; resetPages(); render();
          } }, "Clear"));
        view.append(form, h("div", { id: "results" }));
      },
      load: async function () {
        var f = state.filter;
        var r = await api("api/actors", {
          status: f.status.join(","), actor: f.actor, idContains: f.idContains, limit: f.limit, cursor: state.cursor,
        });
        if (!changed("actors", r.text)) return;
        var rows = r.body.items.map(function (a) {
          return h("tr", null,
            h("td", null, actorLink(a.id)), h("td", null, a.actor), h("td", null, badge(a.status)),
            h("td", { className: "num" }, String(a.generation)),
            h("td", { className: "mono", title: a.startedAt }, when(a.startedAt)),
            h("td", { className: "mono", title: a.updatedAt }, when(a.updatedAt)),
            h("td", { className: "mono" }, preview(a.input, 80)));
        });
        var pager = h("div", { className: "pager" },
          h("button", { type: "button", disabled: state.cursors.length === 0, onclick: function () {
            state.cursor = state.cursors.pop() || null; refresh();
          } }, "‹ Previous"),
          h("button", { type: "button", disabled: !r.body.nextCursor, onclick: function () {
            state.cursors.push(state.cursor); state.cursor = r.body.nextCursor; refresh();
          } }, "Next ›"),
          h("span", { className: "muted" }, "page " + (state.cursors.length + 1) + ", newest first"));
        $("results").replaceChildren(
          table(["id", "actor", "status", "#gen", "started (UTC)", "updated (UTC)", "input"], rows, "no actors match"),
          pager);
      },
    },

    actor: {
      mount: function (view) { view.append(h("div", { id: "results" }, h("p", { className: "muted" }, "loading…"))); },
      load: async function () {
        var id = state.route.id;
        var r;
        try { r = await api("api/actors/" + encodeURIComponent(id)); } catch (e) {
          if (e.status === 404) { $("results").replaceChildren(h("p", { className: "error" }, "no actor with id " + JSON.stringify(id))); state.lastText.actor = null; return; }
          throw e;
        }
        if (!changed("actor", r.text)) return;
        var a = r.body.actor;
        var fields = h("dl", { className: "fields" },
          h("dt", null, "id"), h("dd", { className: "mono" }, a.id),
          h("dt", null, "actor"), h("dd", null, a.actor),
          h("dt", null, "status"), h("dd", null, badge(a.status)),
          h("dt", null, "generation"), h("dd", null, String(a.generation)),
          h("dt", null, "started"), h("dd", { className: "mono" }, when(a.startedAt)),
          h("dt", null, "updated"), h("dd", { className: "mono" }, when(a.updatedAt)),
          a.finishedAt ? [h("dt", null, "finished"), h("dd", { className: "mono" }, when(a.finishedAt))] : null);
        var parts = [h("p", null, link("#actors", "‹ all actors")), h("h2", null, "Actor"), fields,
          h("h2", null, "Input"), h("pre", { className: "block" }, pretty(a.input))];
        if (a.status === "completed") parts.push(h("h2", null, "Output"), h("pre", { className: "block" }, pretty(a.output)));
        if (a.error) {
          parts.push(h("h2", null, "Error"), h("p", { className: "error" },
            (a.error.code ? "[" + a.error.code + "] " : "") + a.error.name + ": " + a.error.message));
          if (a.error.stack) parts.push(h("details", null, h("summary", null, "stack"), h("pre", { className: "block" }, a.error.stack)));
        }
        var rows = r.body.history.map(function (e) {
          return h("tr", null,
            h("td", { className: "num mono" }, e.generation + "." + e.seq),
            h("td", null, e.kind), h("td", { className: "mono" }, e.name),
            h("td", null, e.error ? h("span", { className: "error" }, (e.error.code ? "[" + e.error.code + "] " : "") + e.error.message) : valueCell(e.result)),
            h("td", { className: "mono", title: e.at }, when(e.at)));
        });
        var n = r.body.history.length;
        parts.push(h("h2", null, "History (" + (r.body.truncated ? "first " + n + " entries, truncated" : n === 1 ? "1 entry" : n + " entries") + ", oldest first)"),
          table(["#gen.seq", "kind", "name", "result", "at (UTC)"], rows, "no journal entries yet"));
        $("results").replaceChildren.apply($("results"), parts);
      },
    },

    channels: {
      mount: function (view) { view.append(h("div", { id: "results" })); },
      load: async function () {
        var r = await api("api/channels", { cursor: state.channelCursor });
        if (!changed("channels", r.text)) return;
        var rows = r.body.items.map(function (c) {
          return h("tr", null,
            h("td", { className: "mono" }, c.name), h("td", null, c.mode),
            h("td", { className: "num" }, String(c.subscribers)), h("td", { className: "num" }, String(c.waiting)),
            h("td", { className: "num" }, String(c.backlog)),
            h("td", { className: "num" }, c.behind === null ? "–" : String(c.behind)),
            h("td", { className: "num", title: c.oldestBacklogAt || "" }, sinceIso(c.oldestBacklogAt)));
        });
        var pager = h("div", { className: "pager" },
          h("button", { type: "button", disabled: state.channelCursors.length === 0, onclick: function () {
            state.channelCursor = state.channelCursors.pop() || null; refresh();
          } }, "‹ Previous"),
          h("button", { type: "button", disabled: !r.body.nextCursor, onclick: function () {
            state.channelCursors.push(state.channelCursor); state.channelCursor = r.body.nextCursor; refresh();
          } }, "Next ›"));
        $("results").replaceChildren(
          table(["channel", "mode", "#subscribers", "#waiting", "#backlog", "#behind", "#oldest unread"], rows,
            "no channels yet (a channel appears when an actor first subscribes to it)"),
          h("p", { className: "muted" }, "backlog: messages current subscribers have not read (broadcast: after the slowest cursor) or claimed (competing, direct mailboxes). behind: subscribers with something to read."),
          pager);
      },
    },

    groups: {
      mount: function (view) { view.append(h("div", { id: "results" })); },
      load: async function () {
        var r = await api("api/groups");
        if (!changed("groups", r.text)) return;
        var rows = r.body.items.map(function (g) {
          return h("tr", null, h("td", null, link("#group/" + encodeURIComponent(g.group), g.group, "mono")),
            h("td", { className: "num" }, String(g.members)));
        });
        $("results").replaceChildren(table(["group", "#members"], rows, "no groups with members"));
      },
    },

    group: {
      mount: function (view) { view.append(h("div", { id: "results" })); },
      load: async function () {
        var name = state.route.id;
        var r;
        try { r = await api("api/groups/" + encodeURIComponent(name)); } catch (e) {
          if (e.status === 404) { $("results").replaceChildren(h("p", null, link("#groups", "‹ all groups")), h("p", { className: "muted" }, "group " + JSON.stringify(name) + " has no members")); state.lastText.group = null; return; }
          throw e;
        }
        if (!changed("group", r.text)) return;
        $("results").replaceChildren(h("p", null, link("#groups", "‹ all groups")),
          h("h2", null, "Group " + r.body.group + " (" + r.body.members.length + " members)"),
          table(["member"], r.body.members.map(function (id) { return h("tr", null, h("td", null, actorLink(id))); })));
      },
    },

    workers: {
      mount: function (view) { view.append(h("div", { id: "results" })); },
      load: async function () {
        var r = await api("api/workers");
        if (!changed("workers", r.text)) return;
        var rows = r.body.items.map(function (w) {
          return h("tr", null, h("td", { className: "mono" }, w.id), h("td", null, w.hostname), h("td", { className: "num" }, String(w.pid)),
            h("td", { className: "num" }, String(w.concurrency)), h("td", { className: "mono" }, when(w.startedAt)),
            h("td", { className: "num" }, age(w.heartbeatAgeMs) + " ago"), h("td", null, w.leader ? "leader" : ""));
        });
        $("results").replaceChildren(table(["worker", "host", "#pid", "#concurrency", "started (UTC)", "#last heartbeat", "role"], rows,
          "no workers registered (a worker row appears while a process runs actors)"),
          h("p", { className: "muted" }, "A worker killed without a graceful stop keeps its row; its heartbeat ages."));
      },
    },
  };

  // ---- routing, refresh, live ---------------------------------------------------------------
  function parseHash() {
    var hash = location.hash.replace(/^#/, "");
    var slash = hash.indexOf("/");
    var view = slash < 0 ? hash : hash.slice(0, slash);
    var id = null;
    if (slash >= 0) { try { id = decodeURIComponent(hash.slice(slash + 1)); } catch (e) { id = null; } }
    if ((view === "actor" || view === "group") && id) return { view: view, id: id };
    return { view: views[view] && view !== "actor" && view !== "group" ? view : "actors" };
  }
  function go(hash) { if (location.hash === hash) render(); else location.hash = hash; }

  function render() {
    state.route = parseHash();
    state.lastText = {};
    var tab = state.route.view === "actor" ? "actors" : state.route.view === "group" ? "groups" : state.route.view;
    Array.prototype.forEach.call(document.querySelectorAll("nav a"), function (a) {
      a.className = a.getAttribute("href") === "#" + tab ? "active" : "";
    });
    var view = $("view");
    view.replaceChildren();
    views[state.route.view].mount(view);
    refresh();
  }

  var inflight = false, again = false;
  async function refresh() {
    if (inflight) { again = true; return; }
    inflight = true;
    try {
      await Promise.all([loadStats(), views[state.route.view].load()]);
      setError(null);
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (e) {
      setError(e && e.message ? e.message : String(e));
    } finally {
      inflight = false;
    }
    if (again) { again = false; refresh(); }
  }

  function setLive(kind, text) {
    $("dot").className = "dot " + kind;
    $("livetext").textContent = text;
  }
  function connect() {
    var url = new URL("api/events", location.href);
    url.search = "";
    if (token) url.searchParams.set("token", token);
    var es = new EventSource(url);
    es.addEventListener("tick", function () {
      if (state.paused) return;
      setLive("on", "live");
      refresh();
    });
    es.onerror = function () { if (!state.paused) setLive("off", "reconnecting…"); };
  }

  $("pause").addEventListener("click", function () {
    state.paused = !state.paused;
    $("pause").textContent = state.paused ? "Resume" : "Pause";
    if (state.paused) setLive("paused", "paused"); else { setLive("on", "live"); refresh(); }
  });
  $("reload").addEventListener("click", function () { refresh(); });
  window.addEventListener("hashchange", render);
  render();
  connect();
})();
`;

const BODY = `<header>
<h1>troupe</h1>
<nav><a href="#actors">Actors</a><a href="#channels">Channels</a><a href="#groups">Groups</a><a href="#workers">Workers</a></nav>
<span class="spacer"></span>
<span class="live"><span id="dot" class="dot"></span><span id="livetext">connecting…</span></span>
<span id="updated" class="live"></span>
<button id="reload" type="button">Refresh</button>
<button id="pause" type="button">Pause</button>
</header>
<div id="stats" class="stats"></div>
<main><div id="banner" class="banner" role="alert" hidden></div><div id="view"></div></main>`;

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;

/** The page as served: it never varies (no data, no per-request values). */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>troupe dashboard</title>
<style>${STYLE}</style>
</head>
<body>
${BODY}
<script>${SCRIPT}</script>
</body>
</html>
`;

/** Headers for the page: only this script and style run, requests stay on this origin, no framing. */
export const PAGE_SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": [
    "default-src 'none'",
    `script-src ${sha256(SCRIPT)}`,
    `style-src ${sha256(STYLE)}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; "),
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

/** The page's script, for tests that check how it renders. */
export const PAGE_SCRIPT = SCRIPT;
