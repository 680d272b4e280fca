// @ts-check
/**
 * The dashboard page's script, part 1 of 5 (src/dashboard/page.ts joins dom.js, api.js,
 * views-actors.js, views-system.js and app.js, in that order, into the one inlined script,
 * wrapped in a function: what one part declares at its top level the later parts use).
 *
 * DOM helpers, text only: elements are built node by node and text is set as text (never
 * by parsing markup), so whatever actor inputs, outputs, ids or channel names hold is shown
 * as text. Formatting of times, ages and values.
 */
/* exported $, STATUSES, h, link, actorLink, badge, table, pager, pretty, preview, valueCell, when, age, sinceIso, num, messageOf */

/**
 * @typedef {"running" | "waiting" | "compensating" | "completed" | "failed" | "cancelled"} Status
 * @typedef {Node | string | number | null | undefined | false} Leaf
 * @typedef {Leaf | Leaf[]} Child
 * @typedef {string | number | boolean | null | undefined} Attribute
 * @typedef {{ [attribute: string]: Attribute | ((ev: Event) => void) }} Props
 */

/** @type {Status[]} */
const STATUSES = ["running", "waiting", "compensating", "completed", "failed", "cancelled"];
/** @param {string} id */
const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el;
};

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
/**
 * Previous / Next over a keyset-paged list. `before` holds the cursors of the pages before
 * this one, `at` is this page's cursor, `go` shows the page at a cursor.
 * @param {{ before: (string | null)[], at: string | null, next: string | null | undefined, go: (cursor: string | null) => void }} p
 * @param {...Child} extra
 */
function pager(p, ...extra) {
  const button = (
    /** @type {string} */ label,
    /** @type {boolean} */ disabled,
    /** @type {() => void} */ onclick,
  ) => h("button", { type: "button", disabled, onclick }, label);
  return h(
    "div",
    { className: "pager" },
    button("‹ Previous", p.before.length === 0, () => p.go(p.before.pop() || null)),
    button("Next ›", !p.next, () => {
      p.before.push(p.at);
      p.go(p.next ?? null);
    }),
    ...extra,
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
