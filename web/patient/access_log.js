// "Who saw my data": the patient's access history (GET /api/patients/me/access-log), newest
// first, a page at a time ("More"). Read when the section is opened and with Refresh, not at
// every page load: each read of it is audited. Doctors' and schedulers' accesses only, unless
// "Include my own" is ticked.

import { api, el, formatDateTime, guarded, show } from "/static/api.js";

const CLIENT_TEXT = { page: "web page", api: "API", socket: "live connection" };
const PAGE = 20;

export class AccessLog {
  /** nodes: {details, list, empty, more, own, refresh}; errors: the page's ErrorBanner. */
  constructor({ nodes, errors }) {
    Object.assign(this, { nodes, errors });
    this.next = null;
    this.reads = 0; // an answer to an older read (before a refresh) is dropped
    const reload = () => guarded(errors, nodes.refresh, () => this.load());
    nodes.details.addEventListener("toggle", () => nodes.details.open && reload());
    nodes.refresh.addEventListener("click", reload);
    nodes.own.addEventListener("change", reload);
    nodes.more.addEventListener("click", () => guarded(errors, nodes.more, () => this.more()));
  }

  path(cursor) {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (!this.nodes.own.checked) query.set("others", "true");
    if (cursor !== null) query.set("cursor", String(cursor));
    return `/api/patients/me/access-log?${query}`;
  }

  async load() {
    const read = ++this.reads;
    const page = await api("GET", this.path(null));
    if (read !== this.reads) return;
    this.nodes.list.replaceChildren(...page.entries.map(renderEntry));
    this.shown(page);
  }

  async more() {
    if (this.next === null) return;
    const read = this.reads;
    const page = await api("GET", this.path(this.next));
    if (read !== this.reads) return;
    this.nodes.list.append(...page.entries.map(renderEntry));
    this.shown(page);
  }

  shown(page) {
    this.next = page.next;
    show(this.nodes.more, page.next !== null);
    show(this.nodes.empty, this.nodes.list.childElementCount === 0);
  }

  clear() {
    this.reads += 1;
    this.next = null;
    this.nodes.details.open = false;
    this.nodes.own.checked = false;
    this.nodes.list.replaceChildren();
    show(this.nodes.more, false);
    show(this.nodes.empty, false);
  }
}

function renderEntry(entry) {
  const client = CLIENT_TEXT[entry.client];
  return el(
    "li",
    {
      className: "access-entry",
      "data-testid": "access-entry",
      dataset: { by: entry.by, action: entry.action, client: entry.client || "" },
    },
    el("time", { className: "muted", datetime: entry.at, text: formatDateTime(entry.at) }),
    " ",
    // "you" and "scheduler" start the line: capitalised like the doctors' names.
    el("strong", { "data-testid": "access-who", text: capitalised(entry.who) }),
    " ",
    el("span", { "data-testid": "access-what", text: entry.what }),
    client
      ? el("span", { className: "muted small", "data-testid": "access-client", text: ` · ${client}` })
      : null,
  );
}

const capitalised = (text) => text.charAt(0).toUpperCase() + text.slice(1);
