// The chat panel of one consultation, shared by the patient page and the doctor console.
//
// Messages are ordered by the server's sequence number, never by arrival. A message is sent
// with a client id made here; the ack carries the stored message. A retry reuses the client
// id, so the server stores it once. After a reconnect, `catchUp()` fetches what was missed.

import { api, el, emitAck, formatTime, newClientId } from "/static/api.js";

export class ChatPanel {
  /**
   * consultation: the consultation object; me: the logged-in user;
   * socket: () => the current Socket.IO socket; onError: (err) => void.
   */
  constructor({ consultation, me, socket, onError }) {
    this.consultation = consultation;
    this.me = me;
    this.socket = socket;
    this.onError = onError;
    this.messages = new Map(); // seq -> message
    this.pending = new Map(); // client_id -> {body, failed}
    this.lastSeq = 0;

    const inputId = `chat-input-${consultation.id}`;
    this.list = el("ol", {
      className: "transcript",
      role: "log",
      "aria-live": "polite",
      "aria-label": "Conversation",
      "data-testid": "chat-transcript",
    });
    this.empty = el("p", { className: "muted" });
    this.input = el("textarea", {
      id: inputId,
      rows: 2,
      maxlength: 4000,
      placeholder: "Write a message…",
      "data-testid": "chat-input",
    });
    this.sendButton = el("button", { type: "submit", text: "Send", "data-testid": "chat-send" });
    this.form = el(
      "form",
      { className: "chat-form", on: { submit: (e) => this._onSubmit(e) } },
      el("label", { for: inputId, className: "visually-hidden", text: "Message" }),
      this.input,
      this.sendButton,
    );
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        this.form.requestSubmit();
      }
    });
    this.element = el(
      "section",
      { className: "chat", "data-testid": "chat-panel", "aria-label": "Chat" },
      this.empty,
      this.list,
      this.form,
    );
    this.setConsultation(consultation);
  }

  /** Updates who is who and whether sending is possible (only while active). */
  setConsultation(consultation) {
    this.consultation = consultation;
    const active = consultation.status === "active";
    this.input.disabled = !active;
    this.sendButton.disabled = !active;
    this.form.hidden = !active;
    this.empty.textContent = active ? "No messages yet. Say hello." : "No messages.";
  }

  /** Loads the messages after the last one seen (all of them the first time). */
  async catchUp() {
    const { messages } = await api(
      "GET",
      `/api/consultations/${this.consultation.id}/messages?after=${this.lastSeq}`,
    );
    for (const message of messages) this.receive(message);
  }

  /** A stored message, from the transcript, an ack or the "chat:message" event. */
  receive(message) {
    if (message.consultation_id !== this.consultation.id) return;
    if (message.sender_id === this.me.id) this.pending.delete(message.client_id);
    this.messages.set(message.seq, message);
    this.lastSeq = Math.max(this.lastSeq, message.seq);
    this._render();
  }

  _onSubmit(event) {
    event.preventDefault();
    const body = this.input.value.trim();
    if (!body) return;
    this.input.value = "";
    this._send(newClientId(), body);
  }

  async _send(clientId, body) {
    this.pending.set(clientId, { body, failed: false });
    this._render();
    try {
      const message = await emitAck(this.socket(), "chat:send", {
        consultation_id: this.consultation.id,
        client_id: clientId,
        body,
      });
      this.receive(message);
    } catch (err) {
      const entry = this.pending.get(clientId);
      if (entry) entry.failed = true;
      this._render();
      this.onError(err);
    }
  }

  _senderLabel(message) {
    if (message.sender_id === this.me.id) return "You";
    const c = this.consultation;
    if (message.sender_role === "doctor") return c.doctor ? c.doctor.name : "Doctor";
    if (message.sender_role === "patient") return c.patient.name;
    return message.sender_role;
  }

  _render() {
    const items = [...this.messages.values()]
      .sort((a, b) => a.seq - b.seq)
      .map((m) =>
        el(
          "li",
          {
            className: m.sender_id === this.me.id ? "message mine" : "message theirs",
            "data-testid": "chat-message",
            "data-seq": m.seq,
            "data-sender-role": m.sender_role,
          },
          el(
            "div",
            { className: "meta" },
            el("span", { className: "who", text: this._senderLabel(m) }),
            el("time", { datetime: m.created_at, text: formatTime(m.created_at) }),
          ),
          el("p", { className: "body", "data-testid": "message-body", text: m.body }),
        ),
      );
    for (const [clientId, entry] of this.pending) {
      const status = entry.failed ? "Not sent." : "Sending…";
      const retry = entry.failed
        ? el("button", {
            type: "button",
            className: "link",
            text: "Retry",
            on: { click: () => this._send(clientId, entry.body) },
          })
        : null;
      items.push(
        el(
          "li",
          { className: "message mine pending", "data-testid": "chat-pending" },
          el(
            "div",
            { className: "meta" },
            el("span", { className: "who", text: "You" }),
            status,
            retry,
          ),
          el("p", { className: "body", text: entry.body }),
        ),
      );
    }
    this.list.replaceChildren(...items);
    this.empty.hidden = items.length > 0;
    this.list.scrollTop = this.list.scrollHeight;
  }
}
