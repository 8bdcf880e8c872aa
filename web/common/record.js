// A patient's record, read a page at a time, newest first ({patient, entries: [{consultation,
// transcript, transcript_has_more, recommendations, ...}], next}): "Show older" reads the next
// page, and "Show the whole transcript" the rest of a long one (the record carries the first
// messages of each).

import { api, el, formatDateTime, formatTime } from "/static/api.js";
import { renderCallHistory } from "/static/call.js";
import { renderPackage, renderReferral, renderSickLeave } from "/static/issued.js";

const STATUS_TEXT = {
  waiting: "Waiting for a doctor",
  offered: "Connecting to a doctor",
  active: "In progress",
  ended: "Finished",
  cancelled: "Cancelled",
};
const TRANSCRIPT_PAGE = 500; // messages a transcript read asks for at once (the server's most)

export function statusText(status) {
  return STATUS_TEXT[status] || status;
}

export class RecordView {
  /**
   * container: where the entries go; path: the record route ("/api/patients/me/record" or
   * "/api/patients/<id>/record"); me: names the reader's own messages; skip(entry): an entry
   * left out (the doctor's current consultation); onChange(entries): after each change;
   * onError(err): a failed read.
   */
  constructor(container, { path, me = null, skip = () => false, onChange = () => {}, onError }) {
    Object.assign(this, { container, path, me, skip, onChange, onError });
    this.entries = [];
    this.next = null;
    this.patient = null;
  }

  /** The first page again, and as many older pages as were shown (a refresh keeps them). */
  async load() {
    const shown = this.entries.length;
    let page = await api("GET", this.path);
    const entries = [...page.entries];
    while (page.next !== null && entries.length < shown) {
      page = await api("GET", `${this.path}?before=${page.next}`);
      entries.push(...page.entries);
    }
    Object.assign(this, { entries, next: page.next, patient: page.patient });
    this.render();
    return entries;
  }

  async showOlder() {
    if (this.next === null) return;
    const page = await api("GET", `${this.path}?before=${this.next}`);
    this.entries.push(...page.entries);
    this.next = page.next;
    this.render();
  }

  /** The rest of one entry's transcript, a page at a time until no more follow. */
  async readTranscript(entry) {
    const base = `/api/patients/${this.patient.id}/record/${entry.consultation.id}/messages`;
    while (entry.transcript_has_more) {
      const last = entry.transcript[entry.transcript.length - 1];
      const after = last ? last.seq : 0;
      const page = await api("GET", `${base}?after=${after}&limit=${TRANSCRIPT_PAGE}`);
      entry.transcript.push(...page.messages);
      entry.transcript_has_more = page.has_more && page.messages.length > 0;
    }
    this.render();
  }

  clear() {
    Object.assign(this, { entries: [], next: null, patient: null });
    this.container.replaceChildren();
  }

  render() {
    const shown = this.entries
      .filter((entry) => !this.skip(entry))
      .sort((a, b) => b.consultation.id - a.consultation.id);
    const children = shown.map((entry) => renderEntry(entry, this));
    if (shown.length === 0 && this.next === null) {
      children.push(
        el("p", { className: "muted", "data-testid": "record-empty", text: "No consultations yet." }),
      );
    }
    if (this.next !== null) {
      const older = el("button", {
        type: "button",
        className: "secondary",
        "data-testid": "record-older",
        text: "Show older",
      });
      older.addEventListener("click", () => this.run(older, () => this.showOlder()));
      children.push(older);
    }
    this.container.replaceChildren(...children);
    this.onChange(this.entries);
  }

  run(button, action) {
    button.disabled = true;
    action()
      .catch((err) => this.onError(err))
      .finally(() => {
        button.disabled = false;
      });
  }
}

function renderEntry(entry, view) {
  const { consultation: c, recommendations, forms, recordings } = entry;
  const when = c.started_at || c.created_at;
  const open = ["waiting", "offered", "active"].includes(c.status);
  return el(
    "article",
    {
      className: "record-entry",
      "data-testid": "record-entry",
      "data-consultation-id": c.id,
      "data-status": c.status,
    },
    el(
      "header",
      {},
      el("h3", { text: `${c.specialty.name} · ${c.form}` }),
      el(
        "p",
        { className: "muted" },
        el("time", { datetime: when, text: formatDateTime(when) }),
        ` · ${c.doctor ? c.doctor.name : "no doctor"} · `,
        el("span", { className: `badge ${c.status}`, text: statusText(c.status) }),
      ),
    ),
    renderCallHistory(forms || [], recordings || []),
    el("h4", { text: "Recommendations" }),
    renderRecommendations(recommendations),
    renderIssued(entry),
    open
      ? el("p", {
          className: "muted",
          text: "In progress: the transcript appears here when it ends.",
        })
      : renderTranscript(entry, view),
  );
}

/** The documents issued at the end of the consultation (and its renewals), folded away. */
function renderIssued(entry) {
  const packages = entry.packages || [];
  const referrals = entry.referrals || [];
  const leaves = entry.sick_leaves || [];
  const count = packages.length + referrals.length + leaves.length;
  if (!count) return null;
  return el(
    "details",
    { className: "record-issued", "data-testid": "record-issued" },
    el("summary", { text: `Issued documents (${count})` }),
    el(
      "div",
      { className: "issued-list" },
      packages.map((pkg) => renderPackage(pkg)),
      referrals.map((r) => renderReferral(r)),
      leaves.map((s) => renderSickLeave(s)),
    ),
  );
}

function renderRecommendations(recommendations) {
  if (!recommendations.length) return el("p", { className: "muted", text: "None." });
  return el(
    "ul",
    { className: "recommendations", "data-testid": "record-recommendations" },
    recommendations.map((r) =>
      el(
        "li",
        { "data-testid": "record-recommendation" },
        el("p", { className: "body", text: r.text }),
        el("p", {
          className: "muted small",
          text: `${r.doctor.name}, ${formatDateTime(r.created_at)}`,
        }),
      ),
    ),
  );
}

function renderTranscript(entry, view) {
  const { consultation: c, transcript } = entry;
  const who = (m) => {
    if (view.me && m.sender_id === view.me.id) return "You";
    if (m.sender_role === "doctor") return c.doctor ? c.doctor.name : "Doctor";
    return c.patient.name;
  };
  const more = entry.transcript_has_more;
  let rest = null;
  if (more) {
    rest = el("button", {
      type: "button",
      className: "secondary",
      "data-testid": "record-transcript-more",
      text: "Show the whole transcript",
    });
    rest.addEventListener("click", () => view.run(rest, () => view.readTranscript(entry)));
  }
  const count = `${more ? "the first " : ""}${transcript.length} messages`;
  return el(
    "details",
    { className: "transcript-details", open: true },
    el("summary", { text: `Transcript (${count})` }),
    transcript.length
      ? el(
          "ol",
          { className: "record-transcript", "data-testid": "record-transcript" },
          transcript.map((m) =>
            el(
              "li",
              { "data-testid": "record-message", "data-seq": m.seq },
              el("span", { className: "who", text: `${who(m)} ` }),
              el("time", {
                className: "muted small",
                datetime: m.created_at,
                text: formatTime(m.created_at),
              }),
              el("span", { className: "body", "data-testid": "message-body", text: m.body }),
            ),
          ),
        )
      : el("p", { className: "muted", text: "No messages." }),
    rest,
  );
}
