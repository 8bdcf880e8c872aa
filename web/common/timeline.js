// The patient's timeline (GET /api/patients/me/timeline, or /api/patients/<id>/timeline for a
// doctor of theirs): everything in the record, newest first, a page at a time ("More"),
// filtered by kind (a checkbox each) and by days (From / To, the reader's own days, sent as
// moments). Each kind is drawn with the pieces the pages already have (a package as on "My
// prescriptions", a recording as in a call's history). A consultation's transcript is not in
// the timeline: opening it reads its first messages, "Show the whole transcript" the rest.

import { api, el, formatDateTime, formatTime } from "/static/api.js";
import { renderCallHistory } from "/static/call.js";
import { productText, renderPackage, renderReferral, renderSickLeave } from "/static/issued.js";
import { kindText } from "/static/slots.js";

// The kinds, in the server's order, with what the filter calls them.
const KIND_LABELS = {
  consultation: "Consultations",
  booking: "Booked visits",
  document: "Documents",
  recording: "Recordings",
  recommendation: "Recommendations",
  prescription: "Prescriptions",
  referral: "Referrals",
  sick_leave: "Sick leave",
  follow_up: "Questions",
  renewal: "Renewals",
  rating: "Ratings",
};
export const ALL_KINDS = Object.keys(KIND_LABELS);
// A doctor's timeline never holds ratings (the server leaves them out).
export const DOCTOR_KINDS = ALL_KINDS.filter((kind) => kind !== "rating");

const ITEM_LABELS = {
  consultation: "Consultation",
  booking: "Booked visit",
  document: "Document",
  recording: "Recording",
  recommendation: "Recommendation",
  prescription: "E-prescription",
  referral: "Referral",
  sick_leave: "Sick leave",
  follow_up: "Question",
  renewal: "Renewal request",
  rating: "Rating",
};

const STATUS_TEXT = {
  waiting: "Waiting for a doctor",
  offered: "Connecting to a doctor",
  active: "In progress",
  ended: "Finished",
  cancelled: "Cancelled",
};
const TRANSCRIPT_FIRST = 50; // messages read when a transcript is opened
const TRANSCRIPT_PAGE = 500; // then at once (the server's most)
const PAGE = 20; // the server's default page

export function statusText(status) {
  return STATUS_TEXT[status] || status;
}

/** The start of the reader's day ("2026-12-01" from a date input), `plus` days later. */
function dayStart(value, plus) {
  if (!value) return null;
  const [year, month, day] = value.split("-").map(Number);
  return new Date(year, month - 1, day + plus);
}

export class TimelineView {
  /**
   * root: where the timeline draws (its filters, items and "More"); path: the timeline route;
   * me: the reader (names their own messages); kinds: the kinds offered in the filter;
   * onChange(items): after each drawing; onError(err): a failed read.
   */
  constructor(root, { path, me = null, kinds = ALL_KINDS, onChange = () => {}, onError }) {
    Object.assign(this, { root, path, me, kinds, onChange, onError });
    this.items = [];
    this.next = null;
    this.params = null; // the filters of the pages shown
    this.transcripts = new Map(); // consultation id -> {messages, more, loaded, open, busy}
    this.loading = null;
    this.again = false;
    this.form = this.renderFilters();
    this.note = el("p", { className: "muted small", role: "status", "data-testid": "timeline-note" });
    this.list = el("ol", { className: "timeline", "data-testid": "timeline-items" });
    this.footer = el("div", { className: "timeline-footer" });
    root.replaceChildren(this.form, this.note, this.list, this.footer);
  }

  renderFilters() {
    this.boxes = new Map();
    const chips = this.kinds.map((kind) => {
      const box = el("input", {
        type: "checkbox",
        value: kind,
        checked: true,
        "data-testid": `timeline-kind-${kind}`,
        on: { change: () => this.filtered() },
      });
      this.boxes.set(kind, box);
      return el("label", { className: "chip" }, box, KIND_LABELS[kind]);
    });
    const every = (checked, text, testid) =>
      el("button", {
        type: "button",
        className: "link",
        text,
        "data-testid": testid,
        on: {
          click: () => {
            for (const box of this.boxes.values()) box.checked = checked;
            this.filtered();
          },
        },
      });
    this.from = el("input", { type: "date", "data-testid": "timeline-from" });
    this.to = el("input", { type: "date", "data-testid": "timeline-to" });
    for (const input of [this.from, this.to]) {
      input.addEventListener("change", () => this.filtered());
    }
    const form = el(
      "form",
      { className: "timeline-filters", "data-testid": "timeline-filters" },
      el(
        "fieldset",
        { className: "timeline-kinds" },
        el("legend", { text: "Show" }),
        chips,
        every(true, "All", "timeline-all"),
        every(false, "None", "timeline-none"),
      ),
      el(
        "div",
        { className: "timeline-dates" },
        el("label", {}, "From", this.from),
        el("label", {}, "To", this.to),
      ),
    );
    form.addEventListener("submit", (event) => event.preventDefault());
    return form;
  }

  /** The query of the filters as chosen, or why there is none (nothing to ask for). */
  query() {
    const chosen = this.kinds.filter((kind) => this.boxes.get(kind).checked);
    if (!chosen.length) return { refused: "Choose at least one kind of thing to show." };
    const params = new URLSearchParams();
    if (chosen.length < this.kinds.length) params.set("kind", chosen.join(","));
    const from = dayStart(this.from.value, 0);
    const to = dayStart(this.to.value, 1); // the whole "To" day is in
    if (from && to && from >= to) return { refused: "“From” must not be after “To”." };
    if (from) params.set("from", from.toISOString());
    if (to) params.set("to", to.toISOString());
    return { params, filtered: chosen.length < this.kinds.length || Boolean(from || to) };
  }

  /** The filters changed: the first page of what they choose. */
  filtered() {
    this.items = [];
    this.next = null;
    this.load().catch((err) => this.onError(err));
  }

  /** The first page again, and as many more as were shown (a refresh keeps them). Asked for
   * while a read runs, it reads once more after it (pushes come in bursts). */
  async load() {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      do {
        this.again = false;
        await this.read();
      } while (this.again);
    })();
    try {
      await this.loading;
    } finally {
      this.loading = null;
    }
  }

  async read() {
    const { params, refused, filtered } = this.query();
    this.filtering = filtered;
    if (refused) {
      Object.assign(this, { items: [], next: null, params: null, refusal: refused });
      this.render();
      return;
    }
    const shown = Math.max(this.items.length, PAGE);
    let page = await this.page(params, null);
    const items = [...page.items];
    while (page.next !== null && items.length < shown) {
      page = await this.page(params, page.next);
      items.push(...page.items);
    }
    Object.assign(this, { items, next: page.next, params, refusal: "" });
    this.render();
  }

  page(params, cursor) {
    const query = new URLSearchParams(params);
    if (cursor) query.set("cursor", cursor);
    const text = query.toString();
    return api("GET", text ? `${this.path}?${text}` : this.path);
  }

  async more() {
    if (this.loading) await this.loading;
    if (this.next === null || this.params === null) return;
    const page = await this.page(this.params, this.next);
    this.items.push(...page.items);
    this.next = page.next;
    this.render();
  }

  transcript(id) {
    if (!this.transcripts.has(id)) {
      this.transcripts.set(id, { messages: [], more: true, loaded: false, open: false });
    }
    return this.transcripts.get(id);
  }

  /** A consultation's transcript: its first messages, or (whole) all the rest. */
  async readTranscript(item, whole) {
    const state = this.transcript(item.consultation.id);
    if (state.busy) return;
    state.busy = true;
    try {
      do {
        const last = state.messages[state.messages.length - 1];
        const limit = whole ? TRANSCRIPT_PAGE : TRANSCRIPT_FIRST;
        const page = await api("GET", `${item.transcript.url}?after=${last ? last.seq : 0}&limit=${limit}`);
        state.messages.push(...page.messages);
        state.more = page.has_more && page.messages.length > 0;
      } while (whole && state.more);
      state.loaded = true;
    } finally {
      state.busy = false;
    }
    this.render();
  }

  clear() {
    Object.assign(this, { items: [], next: null, params: null, refusal: "" });
    this.transcripts.clear();
    for (const box of this.boxes.values()) box.checked = true;
    this.from.value = "";
    this.to.value = "";
    this.list.replaceChildren();
    this.footer.replaceChildren();
    this.note.hidden = true;
  }

  render() {
    this.note.textContent = this.refusal || "";
    this.note.hidden = !this.refusal;
    const children = this.items.map((item) => this.renderItem(item));
    if (!children.length && this.next === null && !this.refusal) {
      const text = this.filtering ? "Nothing matches these filters." : "Nothing here yet.";
      children.push(el("li", { className: "muted", "data-testid": "record-empty", text }));
    }
    this.list.replaceChildren(...children);
    const footer = [];
    if (this.next !== null) {
      const more = el("button", {
        type: "button",
        className: "secondary",
        "data-testid": "record-older",
        text: "More",
      });
      more.addEventListener("click", () => this.run(more, () => this.more()));
      footer.push(more);
    }
    this.footer.replaceChildren(...footer);
    this.onChange(this.items);
  }

  renderItem(item) {
    const draw = RENDER[item.kind];
    return el(
      "li",
      {
        className: `timeline-item timeline-${item.kind}`,
        "data-testid": "timeline-item",
        dataset: { kind: item.kind, id: item.id },
      },
      el(
        "p",
        { className: "timeline-meta" },
        el("span", { className: "timeline-kind", text: ITEM_LABELS[item.kind] || item.kind }),
        el("time", { datetime: item.occurred_at, text: formatDateTime(item.occurred_at) }),
      ),
      draw ? draw(item, this) : null,
    );
  }

  run(button, action) {
    if (button) button.disabled = true;
    action()
      .catch((err) => this.onError(err))
      .finally(() => {
        if (button) button.disabled = false;
      });
  }
}

// --- each kind ---------------------------------------------------------------------------------

const RENDER = {
  consultation: renderConsultation,
  booking: ({ booking: b }) =>
    el(
      "div",
      { "data-testid": "timeline-booking" },
      el("h3", { text: `${b.slot.specialty.name} · ${kindText(b.slot.kind)}` }),
      el(
        "p",
        { className: "muted" },
        `${b.slot.doctor.name} · ${formatDateTime(b.slot.starts_at)}–${formatTime(b.slot.ends_at)}`,
        b.status === "cancelled" ? " · " : null,
        b.status === "cancelled" ? el("span", { className: "badge cancelled", text: "Cancelled" }) : null,
      ),
    ),
  document: ({ document: d, shared_into: shared }) =>
    el(
      "div",
      { "data-testid": "timeline-document" },
      el("h3", {}, el("a", { href: d.url, download: d.filename, text: d.filename })),
      el("p", { className: "body", text: d.description }),
      el("p", {
        className: "muted small",
        text: shared.length
          ? `Shared in ${shared.length === 1 ? "a consultation" : `${shared.length} consultations`}`
          : "Not shared in a consultation",
      }),
    ),
  recording: ({ recording }) => renderCallHistory([], [recording]),
  recommendation: ({ recommendation: r }) =>
    el(
      "div",
      { className: "recommendations", "data-testid": "record-recommendation" },
      el("p", { className: "body", text: r.text }),
      el("p", { className: "muted small", text: r.doctor.name }),
    ),
  prescription: ({ package: pkg }) => renderPackage(pkg),
  referral: ({ referral }) => renderReferral(referral),
  sick_leave: ({ sick_leave: leave }) => renderSickLeave(leave),
  follow_up: ({ follow_up: f }) =>
    el(
      "div",
      { "data-testid": "timeline-follow-up" },
      el("p", { className: "body", text: f.question }),
      f.answer
        ? el(
            "p",
            { className: "body" },
            el("strong", { text: `${f.doctor.name}: ` }),
            f.answer,
          )
        : el("p", { className: "muted small", text: `Not answered yet by ${f.doctor.name}.` }),
    ),
  renewal: ({ renewal: r }) =>
    el(
      "div",
      { "data-testid": "timeline-renewal", "data-status": r.status },
      el("p", { text: productText(r.prescription) }),
      el("p", { className: "muted small", text: renewalText(r) }),
    ),
  rating: ({ rating: r }) =>
    el(
      "div",
      { "data-testid": "timeline-rating" },
      el("p", {
        text:
          `${r.score} of 5 for ${r.kind === "service" ? "the service" : `the ${r.kind}`}` +
          ` with ${r.doctor.name}`,
      }),
      r.comment ? el("p", { className: "body muted", text: r.comment }) : null,
    ),
};

function renewalText(r) {
  if (r.status === "approved") return `Approved ${formatDateTime(r.decided_at)}: a new prescription was issued.`;
  if (r.status === "declined") return `Declined ${formatDateTime(r.decided_at)}: ${r.decline_reason}`;
  return `Waiting for ${r.doctor.name}.`;
}

function renderConsultation(item, view) {
  const c = item.consultation;
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
        `${c.doctor ? c.doctor.name : "no doctor"} · `,
        el("span", { className: `badge ${c.status}`, text: statusText(c.status) }),
      ),
    ),
    renderCallHistory(item.forms, []),
    open
      ? el("p", { className: "muted", text: "In progress: the transcript appears here when it ends." })
      : renderTranscript(item, view),
  );
}

function renderTranscript(item, view) {
  const c = item.consultation;
  const state = view.transcript(c.id);
  const who = (m) => {
    if (view.me && m.sender_id === view.me.id) return "You";
    if (m.sender_role === "doctor") return c.doctor ? c.doctor.name : "Doctor";
    return c.patient.name;
  };
  let body;
  if (!state.loaded) {
    body = el("p", { className: "muted small", text: "Reading the transcript…" });
  } else if (!state.messages.length) {
    body = el("p", { className: "muted", text: "No messages." });
  } else {
    body = el(
      "ol",
      { className: "record-transcript", "data-testid": "record-transcript" },
      state.messages.map((m) =>
        el(
          "li",
          { "data-testid": "record-message", "data-seq": m.seq },
          el("span", { className: "who", text: `${who(m)} ` }),
          el("time", { className: "muted small", datetime: m.created_at, text: formatTime(m.created_at) }),
          el("span", { className: "body", "data-testid": "message-body", text: m.body }),
        ),
      ),
    );
  }
  let rest = null;
  if (state.loaded && state.more) {
    rest = el("button", {
      type: "button",
      className: "secondary",
      "data-testid": "record-transcript-more",
      text: "Show the whole transcript",
    });
    rest.addEventListener("click", () => view.run(rest, () => view.readTranscript(item, true)));
  }
  const count = item.transcript.messages;
  const details = el(
    "details",
    { className: "transcript-details", "data-testid": "record-transcript-details", open: state.open },
    el("summary", {
      "data-testid": "record-transcript-toggle",
      text: `Transcript (${count} ${count === 1 ? "message" : "messages"})`,
    }),
    body,
    rest,
  );
  details.addEventListener("toggle", () => {
    state.open = details.open;
    if (details.open && !state.loaded) view.run(null, () => view.readTranscript(item, false));
  });
  return details;
}
