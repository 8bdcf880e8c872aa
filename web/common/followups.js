// "Ask the doctor": the patient's questions after a finished consultation (and the answers,
// which arrive live), and the doctor's inbox of unanswered questions.
//
// Each question and each answer carries a client id, made once for what was typed and reused
// when the same text is sent again (after an error or a lost response): the server stores it
// once and answers a repeat with what it stored. Sending is also refused while in flight.

import { api, el, formatDateTime, newClientId, show } from "/static/api.js";

/** The attempt to send `text` (about `about`): the previous one if it was the same, so a
 * retry reuses its client id; a new one (a new id) for anything else. */
function attemptFor(previous, about, text) {
  if (previous && previous.about === about && previous.text === text) return previous;
  return { about, text, clientId: newClientId() };
}

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
    this.attempt = null; // {about, text, clientId}: the question last sent, until it is stored
    this.sending = false;
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
    this.attempt = null;
    this.nodes.list.replaceChildren();
  }

  /** A question or answer from the server (live "follow-up:answered" included). */
  receive(followUp) {
    this.followUps.set(followUp.id, followUp);
    this.render();
  }

  async _onSubmit(event) {
    event.preventDefault();
    if (this.sending) return; // a second submit (Enter, a double click) while one is in flight
    const { select, question, button, error } = this.nodes;
    const text = question.value.trim();
    show(error, false);
    if (!text) {
      error.textContent = "Write your question first.";
      show(error);
      return;
    }
    // The same question sent again (after an error) keeps its id: stored once, whatever happened
    // to the first request; an edited question is a new one.
    const attempt = attemptFor(this.attempt, select.value, text);
    this.attempt = attempt;
    this.sending = true;
    button.disabled = true;
    try {
      const asked = await api("POST", `/api/consultations/${attempt.about}/follow-ups`, {
        question: attempt.text,
        client_id: attempt.clientId,
      });
      if (this.attempt === attempt) this.attempt = null;
      if (question.value.trim() === attempt.text) question.value = "";
      this.receive(asked);
    } catch (err) {
      error.textContent = sentence(err.message);
      show(error);
    } finally {
      this.sending = false;
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
    this.typed = new Map(); // follow-up id -> the answer being written (kept across renders)
    this.attempts = new Map(); // follow-up id -> {text, clientId}: the answer last sent
    this.sending = new Set(); // follow-up ids whose answer is in flight
  }

  async load() {
    const { follow_ups: found } = await api("GET", "/api/follow-ups");
    this.open = new Map(found.map((f) => [f.id, f]));
    this.render();
  }

  clear() {
    this.open.clear();
    this.typed.clear();
    this.attempts.clear();
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
    this.typed.delete(followUp.id);
    this.attempts.delete(followUp.id);
    if (this.open.delete(followUp.id)) this.render();
  }

  async _answer(f, textarea) {
    if (this.sending.has(f.id)) return; // one request at a time per question
    const text = textarea.value.trim();
    if (!text) {
      this.onError("Write the answer first.");
      return;
    }
    // The same answer sent again (after an error) keeps its id; an edited one gets a new one.
    const attempt = attemptFor(this.attempts.get(f.id), f.id, text);
    this.attempts.set(f.id, attempt);
    this.sending.add(f.id);
    this._setSending(f.id, true);
    try {
      const answered = await api("POST", `/api/follow-ups/${f.id}/answer`, {
        answer: attempt.text,
        client_id: attempt.clientId,
      });
      this.sending.delete(f.id);
      this.answered(answered);
    } catch (err) {
      this.sending.delete(f.id);
      this._setSending(f.id, false);
      // Answered meanwhile (another tab): take it out; anything else stays to retry.
      if (err.code === "follow_up_already_answered") this.answered(f);
      this.onError(err);
    }
  }

  /** Disables or enables the send button of one question (the one rendered now). */
  _setSending(id, sending) {
    for (const node of this.list.querySelectorAll("[data-follow-up-id]")) {
      if (node.dataset.followUpId !== String(id)) continue;
      const button = node.querySelector("[data-testid=follow-up-answer-send]");
      if (button) button.disabled = sending;
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
          on: { input: () => this.typed.set(f.id, textarea.value) },
        });
        // What was being written survives a new question arriving (which renders the list).
        textarea.value = this.typed.get(f.id) ?? "";
        const button = el("button", {
          type: "submit",
          text: "Send answer",
          disabled: this.sending.has(f.id),
          "data-testid": "follow-up-answer-send",
        });
        node.append(
          el(
            "form",
            {
              on: {
                submit: (event) => {
                  event.preventDefault();
                  this._answer(f, textarea);
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
