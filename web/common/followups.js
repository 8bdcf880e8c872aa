// "Ask the doctor": the patient's questions after a finished consultation (and the answers,
// which arrive live), and the doctor's inbox of unanswered questions.

import { api, el, formatDateTime, show } from "/static/api.js";

const sentence = (message) => message.charAt(0).toUpperCase() + message.slice(1);

function renderFollowUp(f, { viewer }) {
  const other = viewer === "doctor" ? f.patient.name : f.doctor.name;
  return el(
    "li",
    {
      className: "follow-up",
      "data-testid": "follow-up",
      "data-follow-up-id": f.id,
      "data-answered": f.answer ? "yes" : "no",
    },
    el("p", {
      className: "muted small",
      text: `${viewer === "doctor" ? "From" : "To"} ${other}, ${formatDateTime(f.asked_at)}`,
    }),
    el("p", { className: "question", "data-testid": "follow-up-question", text: f.question }),
    f.answer
      ? el("p", { className: "answer", "data-testid": "follow-up-answer", text: f.answer })
      : el("p", { className: "muted small", text: "Not answered yet." }),
  );
}

/** The patient's side. nodes: {form, select, question, button, list, empty, error}. */
export class AskTheDoctor {
  constructor({ nodes }) {
    this.nodes = nodes;
    this.followUps = new Map();
    nodes.form.addEventListener("submit", (event) => this._onSubmit(event));
  }

  /** The finished consultations (from the record) a question can be about, newest first. */
  setRecord(record) {
    const finished = record.entries
      .map((e) => e.consultation)
      .filter((c) => c.status === "ended" && c.doctor)
      .sort((a, b) => b.id - a.id);
    const previous = this.nodes.select.value;
    this.nodes.select.replaceChildren(
      ...finished.map((c) =>
        el("option", {
          value: c.id,
          text: `${c.doctor.name} · ${c.specialty.name} · ${formatDateTime(c.ended_at)}`,
        }),
      ),
    );
    if (finished.some((c) => String(c.id) === previous)) this.nodes.select.value = previous;
    this.nodes.form.hidden = finished.length === 0;
  }

  async load() {
    const { follow_ups: found } = await api("GET", "/api/follow-ups");
    this.followUps = new Map(found.map((f) => [f.id, f]));
    this.render();
  }

  clear() {
    this.followUps.clear();
    this.nodes.list.replaceChildren();
  }

  /** A question or answer from the server (live "follow-up:answered" included). */
  receive(followUp) {
    this.followUps.set(followUp.id, followUp);
    this.render();
  }

  async _onSubmit(event) {
    event.preventDefault();
    const { select, question, button, error } = this.nodes;
    const text = question.value.trim();
    show(error, false);
    if (!text) {
      error.textContent = "Write your question first.";
      show(error);
      return;
    }
    button.disabled = true;
    try {
      const asked = await api("POST", `/api/consultations/${select.value}/follow-ups`, {
        question: text,
      });
      question.value = "";
      this.receive(asked);
    } catch (err) {
      error.textContent = sentence(err.message);
      show(error);
    } finally {
      button.disabled = false;
    }
  }

  render() {
    const items = [...this.followUps.values()].sort((a, b) => b.id - a.id);
    show(this.nodes.empty, items.length === 0);
    this.nodes.list.replaceChildren(...items.map((f) => renderFollowUp(f, { viewer: "patient" })));
  }
}

/** The doctor's inbox: unanswered questions, oldest first, each with an answer form. */
export class FollowUpInbox {
  constructor({ list, empty, onError }) {
    this.list = list;
    this.empty = empty;
    this.onError = onError;
    this.open = new Map();
  }

  async load() {
    const { follow_ups: found } = await api("GET", "/api/follow-ups");
    this.open = new Map(found.map((f) => [f.id, f]));
    this.render();
  }

  clear() {
    this.open.clear();
    this.list.replaceChildren();
  }

  /** "follow-up:asked": a new question. */
  asked(followUp) {
    if (followUp.answer) return;
    this.open.set(followUp.id, followUp);
    this.render();
  }

  /** "follow-up:answered" (from this tab or another): out of the inbox. */
  answered(followUp) {
    if (this.open.delete(followUp.id)) this.render();
  }

  async _answer(f, textarea, button) {
    const text = textarea.value.trim();
    if (!text) {
      this.onError("Write the answer first.");
      return;
    }
    button.disabled = true;
    try {
      this.answered(await api("POST", `/api/follow-ups/${f.id}/answer`, { answer: text }));
    } catch (err) {
      button.disabled = false;
      // Answered meanwhile (another tab): take it out; anything else stays to retry.
      if (err.code === "follow_up_already_answered") this.answered(f);
      this.onError(err);
    }
  }

  render() {
    const items = [...this.open.values()].sort((a, b) => a.id - b.id);
    show(this.empty, items.length === 0);
    this.list.replaceChildren(
      ...items.map((f) => {
        const node = renderFollowUp(f, { viewer: "doctor" });
        const inputId = `follow-up-answer-${f.id}`;
        const textarea = el("textarea", {
          id: inputId,
          rows: 3,
          maxlength: 4000,
          "data-testid": "follow-up-answer-input",
        });
        const button = el("button", {
          type: "submit",
          text: "Send answer",
          "data-testid": "follow-up-answer-send",
        });
        node.append(
          el(
            "form",
            {
              on: {
                submit: (event) => {
                  event.preventDefault();
                  this._answer(f, textarea, button);
                },
              },
            },
            el("label", { for: inputId, text: "Your answer" }),
            textarea,
            button,
          ),
        );
        return node;
      }),
    );
  }
}
