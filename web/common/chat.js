// The chat panel of one consultation, shared by the patient page and the doctor console.
//
// Nothing acknowledged is lost, doubled or reordered:
// - Messages are shown in the server's sequence order, without gaps: a message pushed past a
//   gap waits until the gap is filled by `catchUp()` ("chat:resume" from the last seq held,
//   a page at a time until the server says no more follow).
//   A seq already shown is ignored, so a message pushed twice, or pushed and resumed, shows once.
// - A message is written to this tab's outbox (sessionStorage) with a client id made here
//   before it is sent, and removed only when the server's ack (after its commit) comes back.
//   Messages are sent one at a time, in the order written. After a reconnect or a page reload
//   the outbox is sent again with the same client ids; the server stores each one once.
// Typing notices and read receipts go both ways; text is always set with textContent.

import { ApiError, api, el, emitAck, formatTime, newClientId, userError } from "/static/api.js";
import { documentLink } from "/static/documents.js";

export const MAX_LENGTH = 4000;
const TYPING_EVERY_MS = 3000; // a notice at most this often while typing
const TYPING_IDLE_MS = 4000; // stopped typing after this long without a key
const TYPING_SHOWN_MS = 6000; // the other's notice fades if no update comes
const ACK_TIMEOUT_MS = 8000;
const PAGE = 500; // messages a catch-up asks for at once (the server's most)

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
    this.messages = new Map(); // seq -> message, contiguous from 1 to lastSeq
    this.ahead = new Map(); // seq -> message pushed past a gap
    this.lastSeq = 0;
    this.read = { patient_read_seq: 0, doctor_read_seq: 0 };
    this.sentReadSeq = 0;
    this.online = true;
    this.flushing = false;
    this.catchingUp = null;
    this.storageKey = `consult.chat.outbox.${consultation.id}.${me.id}`;
    this.outbox = this._loadOutbox(); // [{client_id, body, failed?, error?}] in order written
    this.typingSentAt = 0;
    this.typingTimer = null;
    this.theirTypingTimer = null;

    const inputId = `chat-input-${consultation.id}`;
    this.list = el("ol", {
      className: "transcript",
      role: "log",
      "aria-live": "polite",
      "aria-label": "Conversation",
      "data-testid": "chat-transcript",
    });
    this.empty = el("p", { className: "muted" });
    this.status = el("p", {
      className: "muted",
      role: "status",
      "data-testid": "chat-status",
      hidden: true,
    });
    this.typingNode = el("p", {
      className: "muted",
      "aria-live": "polite",
      "data-testid": "chat-typing",
      hidden: true,
    });
    this.input = el("textarea", {
      id: inputId,
      rows: 2,
      maxlength: MAX_LENGTH,
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
    this.input.addEventListener("input", () => this._typed());
    this.element = el(
      "section",
      {
        className: "chat",
        "data-testid": "chat-panel",
        "data-connection": "online",
        "aria-label": "Chat",
      },
      this.empty,
      this.list,
      this.typingNode,
      this.status,
      this.form,
    );
    // Kept to be removed by destroy(): the document outlives the panel, and a listener left
    // behind would keep the panel alive and send receipts for a consultation no longer shown.
    this._onVisibility = () => this._sendReceipt();
    document.addEventListener("visibilitychange", this._onVisibility);
    this.setConsultation(consultation);
    this._render();
  }

  /** Updates who is who and whether sending is possible (only while active). */
  setConsultation(consultation) {
    this.consultation = consultation;
    const active = consultation.status === "active";
    this.input.disabled = !active;
    this.sendButton.disabled = !active;
    this.form.hidden = !active;
    this.empty.textContent = active ? "No messages yet. Say hello." : "No messages.";
    if (!active) {
      this._showTheirTyping(false);
      // What is still in the outbox can no longer be sent (a message stored whose ack was
      // lost leaves the outbox at the next catch-up).
      for (const entry of this.outbox) {
        entry.failed = true;
        entry.error = "the consultation has ended";
      }
      if (this.outbox.length) this._render();
    }
  }

  /** The panel is no longer shown (another consultation, the end, a logout). */
  destroy() {
    document.removeEventListener("visibilitychange", this._onVisibility);
    clearTimeout(this.typingTimer);
    clearTimeout(this.theirTypingTimer);
  }

  /** The live connection dropped (false) or is back (true; `catchUp()` follows). */
  setOnline(online) {
    this.online = online;
    this.element.dataset.connection = online ? "online" : "reconnecting";
    this._render();
  }

  /**
   * After every (re)connect and on load: every message after the last one held, in order,
   * then the outbox is sent again. Concurrent calls share one request.
   */
  catchUp() {
    if (!this.catchingUp) {
      this.catchingUp = this._catchUp().finally(() => {
        this.catchingUp = null;
      });
    }
    return this.catchingUp;
  }

  async _catchUp() {
    // A page at a time (the server answers at most PAGE messages and says whether more
    // follow): again from the last seq given until caught up.
    let after = this.lastSeq;
    let theirs = false;
    for (let more = true; more; ) {
      const data = await this._page(after);
      // Applied together and drawn once a page: drawing after each one redrew the whole
      // transcript per message, quadratic in its length (a reload of a long one froze the page).
      for (const message of data.messages) {
        if (this._apply(message) === "new" && message.sender_id !== this.me.id) theirs = true;
      }
      if (data.read) this._setRead(data.read);
      this._render();
      const last = data.messages[data.messages.length - 1];
      more = Boolean(data.has_more && last);
      if (last) after = last.seq;
    }
    if (theirs) {
      this._showTheirTyping(false);
      this._sendReceipt();
    }
    this._flush();
  }

  /** One page of the messages after `after`: "chat:resume" while connected, else over HTTP. */
  async _page(after) {
    const socket = this.socket();
    const id = this.consultation.id;
    if (socket && socket.connected) {
      const data = await emitAck(socket, "chat:resume", {
        consultation_id: id,
        after_seq: after,
        limit: PAGE,
      });
      this.online = true;
      this.element.dataset.connection = "online";
      return data;
    }
    return api("GET", `/api/consultations/${id}/messages?after=${after}&limit=${PAGE}`);
  }

  /** A stored message, from the transcript, a resume, an ack or the "chat:message" event. */
  receive(message) {
    const change = this._apply(message);
    if (!change) return;
    this._render();
    if (change !== "new") return;
    // Receipts say how far this side has read the other's messages: one's own need none.
    if (message.sender_id !== this.me.id) {
      this._showTheirTyping(false);
      this._sendReceipt();
    }
    // A push skipped a message (lost on the way): fetch what is missing.
    if (this.ahead.size > 0) this.catchUp().catch((err) => this.onError(err));
  }

  /**
   * Takes a message in without drawing it. Returns "new" (not held before), "settled" (held,
   * but it took one of ours out of the outbox) or null (nothing to redraw).
   */
  _apply(message) {
    if (message.consultation_id !== this.consultation.id) return null;
    const settled = message.sender_id === this.me.id && this._settled(message.client_id);
    if (message.seq <= this.lastSeq) return settled ? "settled" : null; // already shown
    this.ahead.set(message.seq, message);
    while (this.ahead.has(this.lastSeq + 1)) {
      this.lastSeq += 1;
      this.messages.set(this.lastSeq, this.ahead.get(this.lastSeq));
      this.ahead.delete(this.lastSeq);
    }
    return "new";
  }

  /** A "chat:read" event: how far each side has read. */
  receipt(receipt) {
    if (receipt.consultation_id !== this.consultation.id) return;
    this._setRead(receipt.read);
    this._render();
  }

  /** A "chat:typing" event from the other participant. */
  typing(notice) {
    if (notice.consultation_id !== this.consultation.id || notice.user_id === this.me.id) return;
    this._showTheirTyping(notice.typing);
  }

  // --- sending --------------------------------------------------------------------------------

  _onSubmit(event) {
    event.preventDefault();
    const body = this.input.value.trim();
    if (!body) return;
    if (body.length > MAX_LENGTH) {
      this.onError(userError(`A message may have at most ${MAX_LENGTH} characters.`));
      return;
    }
    this.input.value = "";
    this._typingStopped();
    this.outbox.push({ client_id: newClientId(), body });
    this._saveOutbox();
    this._render();
    this._flush();
  }

  /** Sends the outbox one message at a time, in order, while connected. */
  async _flush() {
    if (this.flushing) return;
    this.flushing = true;
    try {
      for (;;) {
        const next = this.outbox.find((entry) => !entry.failed);
        const socket = this.socket();
        if (!next || !socket || !socket.connected) return;
        if (this.consultation.status !== "active") return;
        let message;
        try {
          message = await emitAck(
            socket,
            "chat:send",
            { consultation_id: this.consultation.id, client_id: next.client_id, body: next.body },
            ACK_TIMEOUT_MS,
          );
        } catch (err) {
          if (!(await this._sendFailed(next, err))) return;
          continue;
        }
        this.receive(message);
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Whether to go on with the outbox after a failed send. */
  async _sendFailed(entry, err) {
    const code = err instanceof ApiError ? err.code : "";
    const waits = {
      rate_limited: "You are sending very fast; your message follows in a moment.",
      // Not stored: it is sent again, with the same client id, once the server can store it.
      database_unavailable:
        "The service is briefly unavailable; your message will be sent when it is back.",
    };
    if (code in waits) {
      this.status.textContent = waits[code];
      this.status.hidden = false;
      await new Promise((resolve) => setTimeout(resolve, 1000 * (err.details?.retry_after || 1)));
      this.status.hidden = true;
      return true;
    }
    if (code === "timeout" || code === "network") {
      // No answer: it may or may not be stored. It is sent again with the same client id (the
      // server stores it once): now if still connected, else after the reconnect.
      const socket = this.socket();
      return Boolean(socket && socket.connected);
    }
    // Refused for good (too long, consultation ended...): keep it, marked, for the user.
    entry.failed = true;
    entry.error = err.message;
    this._saveOutbox();
    this._render();
    this.onError(err);
    return true;
  }

  _retry(clientId) {
    const entry = this.outbox.find((e) => e.client_id === clientId);
    if (!entry) return;
    entry.failed = false;
    entry.error = undefined;
    this._saveOutbox();
    this._render();
    this._flush();
  }

  _discard(clientId) {
    this.outbox = this.outbox.filter((e) => e.client_id !== clientId);
    this._saveOutbox();
    this._render();
  }

  /** The message is stored: out of the outbox. Whether it was there. */
  _settled(clientId) {
    const before = this.outbox.length;
    this.outbox = this.outbox.filter((e) => e.client_id !== clientId);
    if (this.outbox.length === before) return false;
    this._saveOutbox();
    return true;
  }

  _loadOutbox() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(this.storageKey) || "[]");
      return Array.isArray(saved) ? saved.filter((e) => e && e.client_id && e.body) : [];
    } catch {
      return [];
    }
  }

  _saveOutbox() {
    try {
      if (this.outbox.length) sessionStorage.setItem(this.storageKey, JSON.stringify(this.outbox));
      else sessionStorage.removeItem(this.storageKey);
    } catch {
      // Storage full or disabled: the outbox still lives in this page.
    }
  }

  // --- typing and receipts --------------------------------------------------------------------

  _typed() {
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_EVERY_MS) {
      this.typingSentAt = now;
      this._emitTyping(true);
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this._typingStopped(), TYPING_IDLE_MS);
  }

  _typingStopped() {
    clearTimeout(this.typingTimer);
    if (!this.typingSentAt) return;
    this.typingSentAt = 0;
    this._emitTyping(false);
  }

  _emitTyping(typing) {
    const socket = this.socket();
    if (!socket || !socket.connected || this.consultation.status !== "active") return;
    // Advisory: a lost or refused notice is not worth a message to the user.
    socket.emit("chat:typing", { consultation_id: this.consultation.id, typing });
  }

  _showTheirTyping(typing) {
    clearTimeout(this.theirTypingTimer);
    this.typingNode.hidden = !typing;
    if (typing) {
      this.typingNode.textContent = `${this._otherName()} is typing…`;
      this.theirTypingTimer = setTimeout(() => this._showTheirTyping(false), TYPING_SHOWN_MS);
    }
  }

  _sendReceipt() {
    if (document.visibilityState !== "visible" || this.lastSeq <= this.sentReadSeq) return;
    const socket = this.socket();
    if (!socket || !socket.connected) return;
    const mine = this.me.id === this.consultation.patient.id ? "patient" : "doctor";
    if (this.read[`${mine}_read_seq`] >= this.lastSeq) return;
    this.sentReadSeq = this.lastSeq;
    emitAck(socket, "chat:read", { consultation_id: this.consultation.id, seq: this.lastSeq })
      .then((receipt) => this.receipt(receipt))
      .catch(() => {
        this.sentReadSeq = 0; // sent again with the next message or reconnect
      });
  }

  _setRead(read) {
    this.read = {
      patient_read_seq: Math.max(this.read.patient_read_seq, read.patient_read_seq),
      doctor_read_seq: Math.max(this.read.doctor_read_seq, read.doctor_read_seq),
    };
  }

  /** How far the other participant has read. */
  _theirReadSeq() {
    const theyArePatient = this.me.id !== this.consultation.patient.id;
    return theyArePatient ? this.read.patient_read_seq : this.read.doctor_read_seq;
  }

  _otherName() {
    const c = this.consultation;
    if (this.me.id === c.patient.id) return c.doctor ? c.doctor.name : "The doctor";
    return c.patient.name;
  }

  // --- rendering ------------------------------------------------------------------------------

  _senderLabel(message) {
    if (message.sender_id === this.me.id) return "You";
    const c = this.consultation;
    if (message.sender_role === "doctor") return c.doctor ? c.doctor.name : "Doctor";
    if (message.sender_role === "patient") return c.patient.name;
    return message.sender_role;
  }

  _render() {
    const theirRead = this._theirReadSeq();
    const items = [...this.messages.values()].map((m) => {
      const mine = m.sender_id === this.me.id;
      const read = mine && m.seq <= theirRead;
      return el(
        "li",
        {
          className: mine ? "message mine" : "message theirs",
          "data-testid": "chat-message",
          "data-seq": m.seq,
          "data-sender-role": m.sender_role,
          "data-read": mine ? String(read) : undefined,
        },
        el(
          "div",
          { className: "meta" },
          el("span", { className: "who", text: this._senderLabel(m) }),
          el("time", { datetime: m.created_at, text: formatTime(m.created_at) }),
          read ? el("span", { className: "receipt", "data-testid": "message-read", text: "Read" }) : null,
        ),
        el("p", { className: "body", "data-testid": "message-body", text: m.body }),
        m.document ? documentLink(m.document) : null,
      );
    });
    for (const entry of this.outbox) {
      let status = this.online ? "Sending…" : "Waiting for the connection…";
      if (entry.failed) status = `Not sent: ${entry.error || "refused"}.`;
      const canRetry = entry.failed && this.consultation.status === "active";
      const actions = entry.failed
        ? [
            canRetry &&
              el("button", {
                type: "button",
                className: "link",
                text: "Retry",
                on: { click: () => this._retry(entry.client_id) },
              }),
            el("button", {
              type: "button",
              className: "link",
              text: "Discard",
              on: { click: () => this._discard(entry.client_id) },
            }),
          ]
        : [];
      items.push(
        el(
          "li",
          { className: "message mine pending", "data-testid": "chat-pending" },
          el(
            "div",
            { className: "meta" },
            el("span", { className: "who", text: "You" }),
            status,
            ...actions,
          ),
          el("p", { className: "body", text: entry.body }),
        ),
      );
    }
    this.list.replaceChildren(...items);
    this.empty.hidden = items.length > 0;
    if (!this.online) {
      this.status.textContent = "Reconnecting… Messages you write are sent when the connection is back.";
      this.status.hidden = false;
    } else if (this.status.textContent.startsWith("Reconnecting")) {
      this.status.hidden = true;
      this.status.textContent = "";
    }
    this.list.scrollTop = this.list.scrollHeight;
  }
}
