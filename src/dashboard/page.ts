/**
 * The dashboard's one page, made from the files in ./assets: page.html with style.css and the
 * script inlined in place of its <link> and <script src> (nothing fetched from elsewhere).
 * The script is the browser files of SCRIPT_PARTS joined, in order, inside one function: each
 * part's top-level names are the later parts' to use, and none becomes a global of the page.
 * It carries no data: the script fetches the JSON API and renders it as text. A
 * Content-Security-Policy allows exactly this script and this style (by hash) and requests to
 * the same origin. The build copies ./assets next to the compiled server (dist/dashboard/assets).
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

export interface DashboardPage {
  /** The page as served: it never varies (no data, no per-request values). */
  readonly html: string;
  /** The page's script as inlined, for tests that check how it renders. */
  readonly script: string;
  /** Headers for the page: only this script and style run, requests stay on this origin, no framing. */
  readonly headers: Readonly<Record<string, string>>;
}

const ASSETS = new URL("./assets/", import.meta.url);
const STYLESHEET = '<link rel="stylesheet" href="style.css" />';
const SCRIPT = '<script src="app.js"></script>';
/** The script's parts, in the order they run (see each file's head). */
const SCRIPT_PARTS = ["dom.js", "api.js", "views-actors.js", "views-system.js", "app.js"];

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;

function asset(name: string): string {
  return readFileSync(new URL(name, ASSETS), "utf8");
}

/** `html` with its one `marker` replaced by `element` (a page that lost a marker would otherwise serve it unstyled or dead). */
function inline(html: string, marker: string, element: string): string {
  const at = html.indexOf(marker);
  if (at < 0 || html.indexOf(marker, at + 1) >= 0)
    throw new Error(`dashboard page.html must hold ${marker} exactly once`);
  return html.slice(0, at) + element + html.slice(at + marker.length);
}

function build(): DashboardPage {
  const style = asset("style.css");
  const script = `(function () {\n"use strict";\n${SCRIPT_PARTS.map(asset).join("\n")}})();\n`;
  // Inlined text ends its element at the first closing tag: the assets must not hold one.
  if (/<\/style/i.test(style) || /<\/script/i.test(script))
    throw new Error("the dashboard style or script holds a closing </style> or </script>");
  const html = inline(
    inline(asset("page.html"), STYLESHEET, `<style>${style}</style>`),
    SCRIPT,
    `<script>${script}</script>`,
  );
  const headers = {
    "content-security-policy": [
      "default-src 'none'",
      `script-src ${sha256(script)}`,
      `style-src ${sha256(style)}`,
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
  return { html, script, headers };
}

let page: DashboardPage | undefined;

/** The page, read from the asset files on first use (a dashboard start), then kept. */
export function dashboardPage(): DashboardPage {
  page ??= build();
  return page;
}
