// @ts-check
/**
 * The dashboard page's script: a classic browser script, served exactly as written (inlined
 * into page.html by src/dashboard/page.ts, allowed by its hash). No build step: tsc checks it
 * through JSDoc (./tsconfig.json: checkJs, the DOM library) and ESLint lints it.
 *
 * It carries no data: it fetches the JSON API and renders it by building DOM nodes and
 * setting textContent only (never by parsing markup), so whatever actor inputs, outputs, ids
 * or channel names hold is shown as text.
 */

/**
 * @typedef {"running" | "waiting" | "compensating" | "completed" | "failed" | "cancelled"} Status
 * @typedef {"actors" | "actor" | "channels" | "groups" | "group" | "workers"} ViewName
 * @typedef {{ view: ViewName, id?: string }} Route
 * @typedef {{ mount: (view: HTMLElement) => void, load: () => Promise<void> }} View
 * @typedef {{ status: string[], actor: string, idContains: string, limit: string }} Filter
 * @typedef {Node | string | number | null | undefined | false} Leaf
 * @typedef {Leaf | Leaf[]} Child
 * @typedef {string | number | boolean | null | undefined} Attribute
 * @typedef {{ [attribute: string]: Attribute | ((ev: Event) => void) }} Props
 *
 * What the API answers (see src/dashboard/server.ts):
 * @typedef {{ code?: string, name?: string, message: string, stack?: string }} ShownError
 * @typedef {{ id: string, actor: string, status: string, generation: number, startedAt: string,
 *   updatedAt: string, finishedAt?: string | null, input?: unknown, output?: unknown,
 *   error?: ShownError | null }} ActorInfo
 * @typedef {{ generation: number, seq: number, kind: string, name: string, result?: unknown,
 *   error?: ShownError | null, at: string }} HistoryEntry
 * @typedef {{ name: string, mode: string, subscribers: number, waiting: number, backlog: number,
 *   behind: number | null, oldestBacklogAt: string | null }} ChannelSummary
 * @typedef {{ id: string, hostname: string, pid: number, concurrency: number, startedAt: string,
 *   heartbeatAgeMs: number, leader: boolean }} WorkerSummary
 * @typedef {{ byStatus: Record<string, number | undefined>,
 *   durationMs: { p50: number | null, p95: number | null }, throughputPerSec: number | null }} Stats
 * @typedef {{ pending: number, processing: number, sent: number, dead: number }} OutboxCounts
 * @typedef {{ error?: { code: string, message: string } }} ErrorBody
 */
/**
 * @template T
 * @typedef {{ items: T[], nextCursor?: string }} Page
 */

(function () {
  "use strict";
  const token = new URLSearchParams(location.search).get("token");
  /** @type {Status[]} */
  const STATUSES = ["running", "waiting", "compensating", "completed", "failed", "cancelled"];
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
  /** @param {string} id */
  const $ = (id) => {
    const el = document.getElementById(id);
    if (!el) throw new Error(`the page has no #${id}`);
    return el;
  };

  // ---- DOM helpers: text only ------------------------------------------------------------
  /**
   * An element with attributes (`text`: its text; `href`: in-page links only) and children.
   * @param {string} tag
   * @param {Props | null} props
   * @param {...Child} children
   * @returns {HTMLElement}
   */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    if (props)
      Object.keys(props).forEach((k) => {
        const v = props[k];
        if (v === undefined || v === null || v === false) return;
        if (k === "onclick" || k === "onsubmit") {
          if (typeof v !== "function") throw new Error(`${k} must be a function`);
          el.addEventListener(k === "onclick" ? "click" : "submit", v);
          return;
        }
        if (typeof v === "function") throw new Error(`${k}: only onclick and onsubmit take a function`);
        const text = String(v);
        if (k === "text") el.textContent = text;
        else if (k === "className") el.className = text;
        else if (k === "href") {
          if (text.charAt(0) !== "#") throw new Error("only in-page links");
          el.setAttribute("href", text);
        } else el.setAttribute(k, text);
      });
    for (const c of children) add(el, c);
    return el;
  }
  /**
   * @param {HTMLElement} el
   * @param {Child} c
   */
  function add(el, c) {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) {
      c.forEach((x) => add(el, x));
      return;
    }
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  /**
   * @param {string} hash
   * @param {string} text
   * @param {string} [cls]
   */
  function link(hash, text, cls) {
    return h("a", { href: hash, className: cls || "" }, text);
  }
  /** @param {string} id */
  function actorLink(id) {
    return link("#actor/" + encodeURIComponent(id), id, "mono");
  }
  /** @param {string} status */
  function badge(status) {
    const cls = STATUSES.indexOf(/** @type {Status} */ (status)) >= 0 ? "badge s-" + status : "badge";
    return h("span", { className: cls }, status);
  }
  /**
   * A table, or a line saying there is nothing. A header starting with # is a number column.
   * @param {string[]} headers
   * @param {HTMLElement[]} rows
   * @param {string} [empty]
   */
  function table(headers, rows, empty) {
    if (rows.length === 0) return h("p", { className: "muted" }, empty || "nothing");
    return h(
      "table",
      null,
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          headers.map((x) =>
            h("th", { className: x.charAt(0) === "#" ? "num" : "" }, x.charAt(0) === "#" ? x.slice(1) : x),
          ),
        ),
      ),
      h("tbody", null, rows),
    );
  }
  /** @param {unknown} v */
  function json(v) {
    return v === undefined ? "" : JSON.stringify(v);
  }
  /** @param {unknown} v */
  function pretty(v) {
    return v === undefined ? "" : JSON.stringify(v, null, 2);
  }
  /**
   * @param {unknown} v
   * @param {number} n
   */
  function preview(v, n) {
    const s = json(v);
    return s.length > n ? s.slice(0, n) + "…" : s;
  }
  /**
   * A value: short ones inline, long ones folded.
   * @param {unknown} v
   */
  function valueCell(v) {
    const s = json(v);
    if (s.length <= 120) return h("pre", null, s);
    return h(
      "details",
      null,
      h("summary", { className: "mono" }, s.slice(0, 100) + "…"),
      h("pre", { className: "block" }, pretty(v)),
    );
  }
  /** @param {string | null | undefined} iso */
  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d
      .toISOString()
      .replace("T", " ")
      .replace(/\.\d+Z$/, "Z");
  }
  /** @param {number | null | undefined} ms */
  function age(ms) {
    if (ms === null || ms === undefined) return "";
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }
  /** @param {string | null} iso */
  function sinceIso(iso) {
    return iso ? age(Date.now() - new Date(iso).getTime()) : "";
  }
  /**
   * @param {number | null | undefined} v
   * @param {number} [digits]
   */
  function num(v, digits) {
    if (v === null || v === undefined) return "–";
    return digits === undefined ? String(v) : Number(v).toFixed(digits);
  }
  /**
   * What to show for a failure.
   * @param {unknown} e
   */
  function messageOf(e) {
    const message = e && typeof e === "object" && "message" in e ? e.message : undefined;
    return typeof message === "string" && message ? message : String(e);
  }

  // ---- the API ----------------------------------------------------------------------------
  /** An answer other than 2xx: its status, and the server's `code: message` when it gave one. */
  class ApiError extends Error {
    /**
     * @param {string} message
     * @param {number} status
     */
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }
  /**
   * GETs an API path relative to the page; `body` is the parsed JSON, `text` the raw answer.
   * @param {string} path
   * @param {Record<string, string | null | undefined>} [query]
   * @returns {Promise<{ body: unknown, text: string }>}
   */
  async function api(path, query) {
    const url = new URL(path, location.href);
    url.search = "";
    if (query)
      Object.keys(query).forEach((k) => {
        const v = query[k];
        if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
      });
    /** @type {Record<string, string>} */
    const headers = { accept: "application/json" };
    if (token) headers.authorization = "Bearer " + token;
    const res = await fetch(url, { headers, cache: "no-store" });
    const text = await res.text();
    /** @type {unknown} */
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    if (!res.ok) {
      const error = body ? /** @type {ErrorBody} */ (body).error : undefined;
      throw new ApiError(error ? error.code + ": " + error.message : "HTTP " + res.status, res.status);
    }
    return { body, text };
  }
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

  // ---- views --------------------------------------------------------------------------------
  function resetPages() {
    state.cursor = null;
    state.cursors = [];
  }

  /** @type {Record<ViewName, View>} */
  const views = {
    actors: {
      mount(view) {
        const f = state.filter;
        const boxes = STATUSES.map((st) =>
          h(
            "label",
            null,
            h("input", { type: "checkbox", name: "status", value: st, checked: f.status.indexOf(st) >= 0 }),
            st,
          ),
        );
        /** @type {HTMLElement} */
        const form = h(
          "form",
          {
            className: "filters",
            onsubmit: (ev) => {
              ev.preventDefault();
              /** @param {string} selector */
              const input = (selector) =>
                /** @type {HTMLInputElement | HTMLSelectElement} */ (form.querySelector(selector));
              f.status = Array.from(
                /** @type {NodeListOf<HTMLInputElement>} */ (form.querySelectorAll("input[name=status]")),
              )
                .filter((b) => b.checked)
                .map((b) => b.value);
              f.actor = input("[name=actor]").value.trim();
              f.idContains = input("[name=idContains]").value.trim();
              f.limit = input("[name=limit]").value;
              resetPages();
              void refresh();
            },
          },
          h("fieldset", null, h("legend", { className: "muted" }, "status"), boxes),
          h(
            "label",
            null,
            "actor type",
            h("input", { type: "text", name: "actor", value: f.actor, size: 14 }),
          ),
          h(
            "label",
            null,
            "id contains",
            h("input", { type: "text", name: "idContains", value: f.idContains, size: 14 }),
          ),
          h(
            "label",
            null,
            "per page",
            h(
              "select",
              { name: "limit" },
              ["25", "50", "100", "250"].map((n) => h("option", { value: n, selected: n === f.limit }, n)),
            ),
          ),
          h("button", { type: "submit" }, "Apply"),
          h(
            "button",
            {
              type: "button",
              onclick: () => {
                state.filter = { status: [], actor: "", idContains: "", limit: "50" };
                resetPages();
                render();
              },
            },
            "Clear",
          ),
        );
        view.append(form, h("div", { id: "results" }));
      },
      async load() {
        const f = state.filter;
        const r = await api("api/actors", {
          status: f.status.join(","),
          actor: f.actor,
          idContains: f.idContains,
          limit: f.limit,
          cursor: state.cursor,
        });
        if (!changed("actors", r.text)) return;
        const page = /** @type {Page<ActorInfo>} */ (r.body);
        const rows = page.items.map((a) =>
          h(
            "tr",
            null,
            h("td", null, actorLink(a.id)),
            h("td", null, a.actor),
            h("td", null, badge(a.status)),
            h("td", { className: "num" }, String(a.generation)),
            h("td", { className: "mono", title: a.startedAt }, when(a.startedAt)),
            h("td", { className: "mono", title: a.updatedAt }, when(a.updatedAt)),
            h("td", { className: "mono" }, preview(a.input, 80)),
          ),
        );
        const pager = h(
          "div",
          { className: "pager" },
          h(
            "button",
            {
              type: "button",
              disabled: state.cursors.length === 0,
              onclick: () => {
                state.cursor = state.cursors.pop() || null;
                void refresh();
              },
            },
            "‹ Previous",
          ),
          h(
            "button",
            {
              type: "button",
              disabled: !page.nextCursor,
              onclick: () => {
                state.cursors.push(state.cursor);
                state.cursor = page.nextCursor ?? null;
                void refresh();
              },
            },
            "Next ›",
          ),
          h("span", { className: "muted" }, "page " + (state.cursors.length + 1) + ", newest first"),
        );
        $("results").replaceChildren(
          table(
            ["id", "actor", "status", "#gen", "started (UTC)", "updated (UTC)", "input"],
            rows,
            "no actors match",
          ),
          pager,
        );
      },
    },

    actor: {
      mount(view) {
        view.append(h("div", { id: "results" }, h("p", { className: "muted" }, "loading…")));
      },
      async load() {
        const id = state.route.id ?? "";
        let r;
        try {
          r = await api("api/actors/" + encodeURIComponent(id));
        } catch (e) {
          if (e instanceof ApiError && e.status === 404) {
            $("results").replaceChildren(
              h("p", { className: "error" }, "no actor with id " + JSON.stringify(id)),
            );
            state.lastText.actor = null;
            return;
          }
          throw e;
        }
        if (!changed("actor", r.text)) return;
        const body = /** @type {{ actor: ActorInfo, history: HistoryEntry[], truncated: boolean }} */ (
          r.body
        );
        const a = body.actor;
        const fields = h(
          "dl",
          { className: "fields" },
          h("dt", null, "id"),
          h("dd", { className: "mono" }, a.id),
          h("dt", null, "actor"),
          h("dd", null, a.actor),
          h("dt", null, "status"),
          h("dd", null, badge(a.status)),
          h("dt", null, "generation"),
          h("dd", null, String(a.generation)),
          h("dt", null, "started"),
          h("dd", { className: "mono" }, when(a.startedAt)),
          h("dt", null, "updated"),
          h("dd", { className: "mono" }, when(a.updatedAt)),
          a.finishedAt
            ? [h("dt", null, "finished"), h("dd", { className: "mono" }, when(a.finishedAt))]
            : null,
        );
        const parts = [
          h("p", null, link("#actors", "‹ all actors")),
          h("h2", null, "Actor"),
          fields,
          h("h2", null, "Input"),
          h("pre", { className: "block" }, pretty(a.input)),
        ];
        if (a.status === "completed")
          parts.push(h("h2", null, "Output"), h("pre", { className: "block" }, pretty(a.output)));
        if (a.error) {
          parts.push(
            h("h2", null, "Error"),
            h(
              "p",
              { className: "error" },
              (a.error.code ? "[" + a.error.code + "] " : "") + a.error.name + ": " + a.error.message,
            ),
          );
          if (a.error.stack)
            parts.push(
              h(
                "details",
                null,
                h("summary", null, "stack"),
                h("pre", { className: "block" }, a.error.stack),
              ),
            );
        }
        const rows = body.history.map((e) =>
          h(
            "tr",
            null,
            h("td", { className: "num mono" }, e.generation + "." + e.seq),
            h("td", null, e.kind),
            h("td", { className: "mono" }, e.name),
            h(
              "td",
              null,
              e.error
                ? h(
                    "span",
                    { className: "error" },
                    (e.error.code ? "[" + e.error.code + "] " : "") + e.error.message,
                  )
                : valueCell(e.result),
            ),
            h("td", { className: "mono", title: e.at }, when(e.at)),
          ),
        );
        const n = body.history.length;
        parts.push(
          h(
            "h2",
            null,
            "History (" +
              (body.truncated ? "first " + n + " entries, truncated" : n === 1 ? "1 entry" : n + " entries") +
              ", oldest first)",
          ),
          table(["#gen.seq", "kind", "name", "result", "at (UTC)"], rows, "no journal entries yet"),
        );
        $("results").replaceChildren(...parts);
      },
    },

    channels: {
      mount(view) {
        view.append(h("div", { id: "results" }));
      },
      async load() {
        const r = await api("api/channels", { cursor: state.channelCursor });
        if (!changed("channels", r.text)) return;
        const page = /** @type {Page<ChannelSummary>} */ (r.body);
        const rows = page.items.map((c) =>
          h(
            "tr",
            null,
            h("td", { className: "mono" }, c.name),
            h("td", null, c.mode),
            h("td", { className: "num" }, String(c.subscribers)),
            h("td", { className: "num" }, String(c.waiting)),
            h("td", { className: "num" }, String(c.backlog)),
            h("td", { className: "num" }, c.behind === null ? "–" : String(c.behind)),
            h("td", { className: "num", title: c.oldestBacklogAt || "" }, sinceIso(c.oldestBacklogAt)),
          ),
        );
        const pager = h(
          "div",
          { className: "pager" },
          h(
            "button",
            {
              type: "button",
              disabled: state.channelCursors.length === 0,
              onclick: () => {
                state.channelCursor = state.channelCursors.pop() || null;
                void refresh();
              },
            },
            "‹ Previous",
          ),
          h(
            "button",
            {
              type: "button",
              disabled: !page.nextCursor,
              onclick: () => {
                state.channelCursors.push(state.channelCursor);
                state.channelCursor = page.nextCursor ?? null;
                void refresh();
              },
            },
            "Next ›",
          ),
        );
        $("results").replaceChildren(
          table(
            ["channel", "mode", "#subscribers", "#waiting", "#backlog", "#behind", "#oldest unread"],
            rows,
            "no channels yet (a channel appears when an actor first subscribes to it)",
          ),
          h(
            "p",
            { className: "muted" },
            "backlog: messages current subscribers have not read (broadcast: after the slowest cursor) or claimed (competing, direct mailboxes). behind: subscribers with something to read.",
          ),
          pager,
        );
      },
    },

    groups: {
      mount(view) {
        view.append(h("div", { id: "results" }));
      },
      async load() {
        const r = await api("api/groups");
        if (!changed("groups", r.text)) return;
        const { items } = /** @type {{ items: { group: string, members: number }[] }} */ (r.body);
        const rows = items.map((g) =>
          h(
            "tr",
            null,
            h("td", null, link("#group/" + encodeURIComponent(g.group), g.group, "mono")),
            h("td", { className: "num" }, String(g.members)),
          ),
        );
        $("results").replaceChildren(table(["group", "#members"], rows, "no groups with members"));
      },
    },

    group: {
      mount(view) {
        view.append(h("div", { id: "results" }));
      },
      async load() {
        const name = state.route.id ?? "";
        let r;
        try {
          r = await api("api/groups/" + encodeURIComponent(name));
        } catch (e) {
          if (e instanceof ApiError && e.status === 404) {
            $("results").replaceChildren(
              h("p", null, link("#groups", "‹ all groups")),
              h("p", { className: "muted" }, "group " + JSON.stringify(name) + " has no members"),
            );
            state.lastText.group = null;
            return;
          }
          throw e;
        }
        if (!changed("group", r.text)) return;
        const body = /** @type {{ group: string, members: string[] }} */ (r.body);
        $("results").replaceChildren(
          h("p", null, link("#groups", "‹ all groups")),
          h("h2", null, "Group " + body.group + " (" + body.members.length + " members)"),
          table(
            ["member"],
            body.members.map((id) => h("tr", null, h("td", null, actorLink(id)))),
          ),
        );
      },
    },

    workers: {
      mount(view) {
        view.append(h("div", { id: "results" }));
      },
      async load() {
        const r = await api("api/workers");
        if (!changed("workers", r.text)) return;
        const { items } = /** @type {{ items: WorkerSummary[] }} */ (r.body);
        const rows = items.map((w) =>
          h(
            "tr",
            null,
            h("td", { className: "mono" }, w.id),
            h("td", null, w.hostname),
            h("td", { className: "num" }, String(w.pid)),
            h("td", { className: "num" }, String(w.concurrency)),
            h("td", { className: "mono" }, when(w.startedAt)),
            h("td", { className: "num" }, age(w.heartbeatAgeMs) + " ago"),
            h("td", null, w.leader ? "leader" : ""),
          ),
        );
        $("results").replaceChildren(
          table(
            ["worker", "host", "#pid", "#concurrency", "started (UTC)", "#last heartbeat", "role"],
            rows,
            "no workers registered (a worker row appears while a process runs actors)",
          ),
          h(
            "p",
            { className: "muted" },
            "A worker killed without a graceful stop keeps its row; its heartbeat ages.",
          ),
        );
      },
    },
  };

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
})();
