// @ts-check
/**
 * The dashboard page's script, part 3 of 5 (see dom.js): the actors view (filters, pages,
 * newest first) and one actor's view (fields, input, output, error, history).
 */
/* exported actorViews */

/** @type {Pick<Record<ViewName, View>, "actors" | "actor">} */
const actorViews = {
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
        h("label", null, "actor type", h("input", { type: "text", name: "actor", value: f.actor, size: 14 })),
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
      const pages = pager(
        {
          before: state.cursors,
          at: state.cursor,
          next: page.nextCursor,
          go: (cursor) => {
            state.cursor = cursor;
            void refresh();
          },
        },
        h("span", { className: "muted" }, "page " + (state.cursors.length + 1) + ", newest first"),
      );
      $("results").replaceChildren(
        table(
          ["id", "actor", "status", "#gen", "started (UTC)", "updated (UTC)", "input"],
          rows,
          "no actors match",
        ),
        pages,
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
      const body = /** @type {{ actor: ActorInfo, history: HistoryEntry[], truncated: boolean }} */ (r.body);
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
        a.finishedAt ? [h("dt", null, "finished"), h("dd", { className: "mono" }, when(a.finishedAt))] : null,
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
            h("details", null, h("summary", null, "stack"), h("pre", { className: "block" }, a.error.stack)),
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
};
