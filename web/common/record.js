// Renders a patient record ({patient, entries: [{consultation, transcript, recommendations}]}).

import { el, formatDateTime, formatTime } from "/static/api.js";
import { renderCallHistory } from "/static/call.js";

const STATUS_TEXT = {
  waiting: "Waiting for a doctor",
  offered: "Connecting to a doctor",
  active: "In progress",
  ended: "Finished",
  cancelled: "Cancelled",
};

export function statusText(status) {
  return STATUS_TEXT[status] || status;
}

/** One <article> per consultation, newest first. `me` names the reader's own messages. */
export function renderRecord(container, record, me) {
  const entries = [...record.entries].sort((a, b) => b.consultation.id - a.consultation.id);
  if (entries.length === 0) {
    container.replaceChildren(
      el("p", { className: "muted", "data-testid": "record-empty", text: "No consultations yet." }),
    );
    return;
  }
  container.replaceChildren(...entries.map((entry) => renderEntry(entry, me)));
}

function renderEntry({ consultation: c, transcript, recommendations, forms, recordings }, me) {
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
    open
      ? el("p", {
          className: "muted",
          text: "In progress: the transcript appears here when it ends.",
        })
      : renderTranscript(c, transcript, me),
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

function renderTranscript(c, transcript, me) {
  const who = (m) => {
    if (me && m.sender_id === me.id) return "You";
    if (m.sender_role === "doctor") return c.doctor ? c.doctor.name : "Doctor";
    return c.patient.name;
  };
  return el(
    "details",
    { className: "transcript-details", open: true },
    el("summary", { text: `Transcript (${transcript.length} messages)` }),
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
  );
}
