// @ts-check
/**
 * The dashboard page's script, part 4 of 5 (see dom.js): channels (subscribers, backlog),
 * process groups and one group's members, the worker registry.
 */
/* exported systemViews */

/** @type {Pick<Record<ViewName, View>, "channels" | "groups" | "group" | "workers">} */
const systemViews = {
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
      const pages = pager({
        before: state.channelCursors,
        at: state.channelCursor,
        next: page.nextCursor,
        go: (cursor) => {
          state.channelCursor = cursor;
          void refresh();
        },
      });
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
        pages,
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
