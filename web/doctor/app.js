// The doctor console: log in, go online for some specialties and forms, consult the patients
// matched to you (chat, recommendations, history) and end the consultation. Below: the
// doctor's own weekly hours and upcoming appointments (read-only; schedule.js).

import {
  $,
  ErrorBanner,
  api,
  bindConnectionIndicator,
  connectSocket,
  el,
  emitAck,
  formatDateTime,
  guarded,
  show,
  userError,
} from "/static/api.js";
import { startSession } from "/static/session.js";
import { ChatPanel } from "/static/chat.js";
import { CallPanel } from "/static/call.js";
import { DOCTOR_KINDS, TimelineView, statusText } from "/static/timeline.js";
import { PatientDocuments, documentDeleted } from "/static/documents.js";
import { FollowUpInbox } from "/static/followups.js";
import { MyHours, UpcomingAppointments } from "/doctor/schedule.js";
import { OutcomePanel } from "/doctor/outcome.js";
import { RenewalInbox } from "/doctor/renewals.js";
import { MyRatings } from "/doctor/ratings.js";
import { ResultsView } from "/static/results.js";

const errors = new ErrorBanner($("#error"));
const state = {
  me: null,
  socket: null,
  cards: new Map(), // consultation id -> ConsultationCard
  loads: new Set(), // reads on their way: a logout waits for them (see beforeLogout)
};

/** Run a read in the background, shown as an error if it fails, and known to the logout. */
function background(promise) {
  const tracked = promise.catch((err) => errors.show(err));
  state.loads.add(tracked);
  tracked.finally(() => state.loads.delete(tracked));
  return tracked;
}
const inbox = new FollowUpInbox({
  list: $("#inbox"),
  empty: $("#inbox-empty"),
  onError: (err) => errors.show(err),
});
const myRatings = new MyRatings();
$("#my-ratings-refresh").addEventListener("click", () =>
  guarded(errors, $("#my-ratings-refresh"), () => myRatings.load()),
);
const renewals = new RenewalInbox({
  list: $("#renewals"),
  empty: $("#renewals-empty"),
  notice: $("#renewals-notice"),
  onError: (err) => errors.show(err),
});
const myHours = new MyHours({
  nodes: {
    rows: $("#my-hours-rows"),
    table: $("#my-hours-table"),
    empty: $("#my-hours-empty"),
    notice: $("#my-hours-notice"),
  },
});
const appointments = new UpcomingAppointments({
  nodes: {
    list: $("#appointments"),
    empty: $("#appointments-empty"),
    more: $("#appointments-more"),
  },
});

// --- session -------------------------------------------------------------------------------

async function beforeLogout() {
  // Leaving the console: take no more patients (best effort; the logout happens anyway).
  if (state.socket && state.socket.connected) {
    await emitAck(state.socket, "presence:offline", {}, 3000).catch(() => null);
  }
  // A read sent after the logout is refused (401, an error in the console): no reconnect may
  // start another sync, and the reads already on their way finish first.
  if (state.socket) state.socket.disconnect();
  await Promise.allSettled([...state.loads]);
}

function afterLogout() {
  if (state.socket) state.socket.disconnect();
  state.socket = null;
  state.me = null;
  for (const card of state.cards.values()) {
    card.call.destroy();
    card.chat.destroy();
  }
  state.cards.clear();
  $("#consultations").replaceChildren();
  inbox.clear();
  renewals.clear();
  myRatings.clear();
  myHours.clear();
  appointments.clear();
  showNotice("");
  $("#presence-status").dataset.state = "unknown";
  $("#presence-status").textContent = "You are not taking patients from this console.";
}

async function enter(me) {
  state.me = me;
  show($("#login-section"), false);
  show($("#app-section"));
  $("#whoami").textContent = me.name;
  show($("#whoami"));
  show($("#logout-button"));
  const isDoctor = me.role === "doctor";
  show($("#wrong-role"), !isDoctor);
  show($("#presence-section"), isDoctor);
  show($("#consultations-section"), isDoctor);
  show($("#inboxes"), isDoctor);
  show($("#schedule-section"), isDoctor);
  show($("#my-ratings-section"), isDoctor);
  if (!isDoctor) return;
  renderEmpty();
  connect();
  background(myRatings.load());
  await loadSpecialties(me.specialties);
}

// --- availability --------------------------------------------------------------------------

// The specialties and forms this doctor last went online with, per user in this browser (no
// payload the console can read on load carries them: the offline ack and presence:changed
// have none): ticking every specialty by default put doctors online for specialties they did
// not mean to take today. None the first time.
const choiceKey = (me) => `consult.doctor.${me.id}.presence`;

function lastChoice(me) {
  try {
    const saved = JSON.parse(localStorage.getItem(choiceKey(me)) || "null");
    if (saved && Array.isArray(saved.specialties) && Array.isArray(saved.forms)) return saved;
  } catch {
    // unreadable (e.g. edited by hand): as if never chosen
  }
  return { specialties: [], forms: ["chat"] };
}

function rememberChoice(me, presence) {
  const choice = { specialties: presence.specialties, forms: presence.forms };
  try {
    localStorage.setItem(choiceKey(me), JSON.stringify(choice));
  } catch {
    // storage full or disabled: the console works, it just does not remember
  }
}

async function loadSpecialties(codes) {
  const { specialties } = await api("GET", "/api/specialties");
  const names = new Map(specialties.map((s) => [s.code, s.name]));
  const last = lastChoice(state.me);
  for (const box of document.querySelectorAll("#presence-form input[name=form]")) {
    box.checked = last.forms.includes(box.value);
  }
  $("#specialty-choices").replaceChildren(
    ...codes.map((code) =>
      el(
        "label",
        { className: "inline" },
        el("input", {
          type: "checkbox",
          name: "specialty",
          value: code,
          checked: last.specialties.includes(code),
          "data-testid": `specialty-${code}`,
        }),
        ` ${names.get(code) || code}`,
      ),
    ),
  );
}

function checkedValues(name) {
  return [...document.querySelectorAll(`#presence-form input[name=${name}]:checked`)].map(
    (input) => input.value,
  );
}

$("#presence-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await guarded(errors, $("#online-button"), async () => {
    const specialties = checkedValues("specialty");
    const forms = checkedValues("form");
    if (!specialties.length) throw userError("Choose at least one specialty.");
    if (!forms.length) throw userError("Choose at least one form.");
    const presence = await emitAck(state.socket, "presence:online", { specialties, forms });
    rememberChoice(state.me, presence);
    renderPresence(presence);
  });
});

$("#appointments-refresh").addEventListener("click", () =>
  guarded(errors, $("#appointments-refresh"), () => appointments.load()),
);

$("#offline-button").addEventListener("click", () =>
  guarded(errors, $("#offline-button"), async () => {
    renderPresence(await emitAck(state.socket, "presence:offline", {}));
  }),
);

function renderPresence(presence) {
  const node = $("#presence-status");
  node.dataset.state = presence.status;
  if (presence.status === "online") {
    const names = presence.specialties.map((code) => {
      const box = document.querySelector(`input[name=specialty][value="${CSS.escape(code)}"]`);
      return box ? box.parentElement.textContent.trim() : code;
    });
    node.textContent =
      `Online for ${names.join(", ")} (${presence.forms.join(", ")}). ` +
      "Patients are connected to you as they arrive.";
  } else {
    node.textContent = "Offline. You receive no new patients.";
  }
}

// --- live connection -----------------------------------------------------------------------

function connect() {
  const socket = connectSocket();
  state.socket = socket;
  bindConnectionIndicator(socket, $("#connection"), (err) =>
    errors.show(`The live connection was refused: ${err.message}. Please log in again.`),
  );
  socket.on("connect", () => background(sync()));
  socket.on("consultation:matched", ({ consultation }) => upsert(consultation));
  socket.on("consultation:ended", ({ consultation }) => upsert(consultation));
  // The walk-in queue offers a patient; the doctor accepts or declines before it lapses.
  socket.on("queue:offer", ({ consultation, expires_at: expiresAt }) =>
    upsert(consultation, expiresAt),
  );
  socket.on("queue:offer-withdrawn", ({ consultation_id: id, reason }) => {
    const card = state.cards.get(id);
    if (card && card.consultation.status === "offered") {
      card.close();
      showNotice(`The offer of ${card.consultation.patient.name} was withdrawn (${reason}).`);
    }
  });
  socket.on("presence:changed", ({ status, reason }) => {
    const node = $("#presence-status");
    if (node.dataset.state === status) return;
    node.dataset.state = status;
    node.textContent = `You are ${status}${reason ? ` (${reason})` : ""}.`;
  });
  // "Ask the doctor": a new question, or one answered (here or in another tab).
  socket.on("follow-up:asked", ({ follow_up: followUp }) => inbox.asked(followUp));
  socket.on("follow-up:answered", ({ follow_up: followUp }) => inbox.answered(followUp));
  // Renewal requests: a new one for this doctor, one handed to or from them, one decided.
  socket.on("renewal:requested", ({ renewal }) => renewals.requested(renewal));
  socket.on("renewal:reassigned", ({ renewal }) => renewals.reassigned(renewal, state.me.id));
  socket.on("renewal:decided", ({ renewal }) => renewals.decided(renewal));
  // "Issue and end" here or in another tab; a document cancelled (here or in another tab).
  socket.on("outcome:issued", ({ outcome }) => {
    const card = state.cards.get(outcome.consultation_id);
    if (card) card.outcome.finish(outcome);
  });
  socket.on("outcome:cancelled", ({ kind, document: doc }) => {
    for (const card of state.cards.values()) card.outcome.issued.cancelled(kind, doc);
  });
  // A scheduler added or removed this doctor's weekly hours.
  socket.on("schedule:changed", (change) =>
    myHours.changed(change).catch((err) => errors.show(err)),
  );
  // The patient consulted here uploaded or deleted a document (in any of their tabs): the
  // card's list follows, and a chat message that shared a deleted one says it is deleted.
  socket.on("result:received", ({ result }) => {
    for (const card of cardsOf(result.patient_id)) card.results.received(result);
  });
  socket.on("document:uploaded", ({ patient_id: patientId, document: doc }) => {
    for (const card of cardsOf(patientId)) card.documents.added(doc);
  });
  socket.on("document:deleted", ({ patient_id: patientId, document: doc }) => {
    documentDeleted(doc);
    for (const card of cardsOf(patientId)) card.documents.removed(doc.id);
  });
  socket.on("chat:message", ({ message }) => {
    const card = state.cards.get(message.consultation_id);
    if (card) card.chat.receive(message);
  });
  // Read receipts (what the patient has read) and typing notices, per consultation card.
  socket.on("chat:read", (receipt) => {
    const card = state.cards.get(receipt.consultation_id);
    if (card) card.chat.receipt(receipt);
  });
  socket.on("chat:typing", (notice) => {
    const card = state.cards.get(notice.consultation_id);
    if (card) card.chat.typing(notice);
  });
  socket.on("disconnect", () => {
    for (const card of state.cards.values()) card.chat.setOnline(false);
  });
}

/** After every (re)connect: the open consultations, what was missed in each chat, the inbox,
 * the doctor's hours and appointments. */
async function sync() {
  // The doctor's own hours and appointments: changes missed while disconnected are read here.
  background(myHours.load(state.me.id));
  background(appointments.load());
  const { consultations } = await api("GET", "/api/consultations/open");
  background(inbox.load());
  background(renewals.load());
  const openIds = new Set(consultations.map((c) => c.id));
  // Cards shown before this (re)connect may have missed document events: their lists are
  // loaded again below (a card started now loads its own).
  const shown = new Set([...state.cards.values()].filter((card) => card.started));
  for (const c of consultations) upsert(c);
  for (const [id, card] of state.cards) {
    if (!card.isOpen() || openIds.has(id)) continue;
    if (card.consultation.status === "offered") card.close(); // the offer lapsed meanwhile
    else card.update(await api("GET", `/api/consultations/${id}`));
  }
  const active = [...state.cards.values()].filter((c) => c.consultation.status === "active");
  for (const card of active) {
    if (!shown.has(card)) continue;
    card.documents.load().catch((err) => errors.show(err));
    card.outcome.reconnected(); // what was typed while away is saved, or the draft read again
  }
  await Promise.all(active.map((c) => c.chat.catchUp()));
}

/** The cards of the patient's consultations (documents belong to the patient). */
function cardsOf(patientId) {
  return [...state.cards.values()].filter((card) => card.consultation.patient.id === patientId);
}

function upsert(consultation, offerExpiresAt) {
  let card = state.cards.get(consultation.id);
  if (card) {
    card.update(consultation);
  } else {
    if (!OPEN.has(consultation.status)) return;
    card = new ConsultationCard(consultation, offerExpiresAt);
    showNotice("");
    state.cards.set(consultation.id, card);
    $("#consultations").prepend(card.element);
    card.start();
  }
  renderEmpty();
}

function renderEmpty() {
  show($("#no-consultations"), state.cards.size === 0);
  placeConsultations();
}

function showNotice(text) {
  const node = $("#notice");
  node.textContent = text;
  show(node, Boolean(text));
  placeConsultations();
}

/** With a patient on screen (offered, in consultation, or just ended) or news of one (a
 * withdrawn offer), the consultations and their calls come first, above Availability and the
 * follow-ups; otherwise Availability does. Moved only when the first card comes or the last
 * goes, so never with a call playing inside; the DOM order is the order seen (keyboard too). */
function placeConsultations() {
  const section = $("#consultations-section");
  const presence = $("#presence-section");
  const wanted = state.cards.size > 0 || !$("#notice").hidden;
  const first = Boolean(section.compareDocumentPosition(presence) & Node.DOCUMENT_POSITION_FOLLOWING);
  if (wanted && !first) presence.before(section);
  if (!wanted && first) $("#inboxes").after(section);
}

const OPEN = new Set(["waiting", "offered", "active"]);

// --- one consultation --------------------------------------------------------------------

class ConsultationCard {
  constructor(consultation, offerExpiresAt) {
    this.consultation = consultation;
    this.offerExpiresAt = offerExpiresAt || consultation.offer_expires_at || null;
    const id = consultation.id;
    this.chat = new ChatPanel({
      consultation,
      me: state.me,
      socket: () => state.socket,
      onError: (err) => errors.show(err),
    });
    // Voice and video with the patient, with both legs' quality figures for the doctor.
    this.call = new CallPanel({
      consultation,
      me: state.me,
      socket: () => state.socket,
      onError: (err) => errors.show(err),
      showQuality: true,
      // The header says the form now, not the one the patient chose (switches change it).
      onForm: () => this.render(),
    });
    this.title = el("h3", { "data-testid": "patient-name", text: consultation.patient.name });
    this.meta = el("p", { className: "muted", "data-testid": "consultation-meta" });
    this.statusBadge = el("span", { className: "badge", "data-testid": "consultation-status" });
    this.endButton = el("button", {
      type: "button",
      className: "danger",
      text: "End consultation",
      "data-testid": "end-consultation",
      on: { click: () => this.end() },
    });
    this.acceptButton = el("button", {
      type: "button",
      text: "Accept",
      "data-testid": "accept-offer",
      on: { click: () => this.answerOffer("queue:accept") },
    });
    this.declineButton = el("button", {
      type: "button",
      className: "secondary",
      text: "Decline",
      "data-testid": "decline-offer",
      on: { click: () => this.answerOffer("queue:decline") },
    });
    this.offerText = el("p", { className: "notice", "data-testid": "offer" });
    this.offer = el(
      "div",
      { className: "offer" },
      this.offerText,
      el("div", { className: "actions" }, this.acceptButton, this.declineButton),
    );
    this.closeButton = el("button", {
      type: "button",
      className: "secondary",
      text: "Close",
      hidden: true,
      "data-testid": "close-consultation",
      on: { click: () => this.close() },
    });

    // The recommendation, e-prescriptions, referrals, sick leave; "Issue and end".
    this.outcome = new OutcomePanel({
      consultation,
      onError: (err) => errors.show(err),
      onRecommendation: (saved) => this.addSaved(saved),
      onIssued: () => this.refresh(),
    });
    this.savedList = el("ul", {
      className: "recommendations",
      "data-testid": "saved-recommendations",
    });
    this.noneSaved = el("p", { className: "muted", text: "None yet." });
    this.history = el("div", { className: "history", "data-testid": "patient-history" });
    // The patient's whole record, this consultation too (without the patient's ratings).
    this.record = new TimelineView(this.history, {
      path: `/api/patients/${consultation.patient.id}/timeline`,
      kinds: DOCTOR_KINDS,
      onError: (err) => errors.show(err),
    });
    this.documents = new PatientDocuments(consultation.patient.id);
    // The patient's laboratory and imaging results, with a value's history as a chart.
    this.resultsList = el("div", { className: "results", "data-testid": "patient-results" });
    this.results = new ResultsView(this.resultsList, {
      path: `/api/patients/${consultation.patient.id}/results`,
      heading: "h5",
      onError: (err) => errors.show(err),
    });

    this.element = el(
      "article",
      {
        className: "card consultation-card",
        "data-testid": "consultation-card",
        "data-consultation-id": id,
      },
      el(
        "div",
        { className: "card-head" },
        el("div", {}, this.title, this.meta),
        el("div", { className: "actions" }, this.statusBadge, this.endButton, this.closeButton),
      ),
      this.offer,
      (this.grid = el(
        "div",
        { className: "consultation-grid" },
        el("div", {}, this.call.element, el("h4", { text: "Chat" }), this.chat.element),
        el(
          "div",
          {},
          el("h4", { text: "Outcome" }),
          this.outcome.element,
          el("h5", { text: "Saved recommendations" }),
          this.noneSaved,
          this.savedList,
          el("h5", { text: "Patient's documents" }),
          this.documents.element,
          el(
            "details",
            { className: "history-details", "data-testid": "patient-results-details" },
            el("summary", { text: "Laboratory and imaging results" }),
            this.resultsList,
          ),
          el(
            "details",
            { className: "history-details" },
            el("summary", { text: "Patient timeline (the whole record)" }),
            this.history,
          ),
        ),
      )),
    );
    this.render();
  }

  isOpen() {
    return OPEN.has(this.consultation.status);
  }

  /** Once it is active: the transcript so far and what is already in the patient's record. */
  start() {
    if (this.started || this.consultation.status !== "active") return;
    this.started = true;
    this.chat.catchUp().catch((err) => errors.show(err));
    this.call.start().catch((err) => errors.show(err));
    this.loadRecord().catch((err) => errors.show(err));
    this.documents.load().catch((err) => errors.show(err));
    this.results.load().catch((err) => errors.show(err));
    this.outcome.load().catch((err) => errors.show(err));
  }

  /** After "Issue and end": how the consultation stands now (ended). */
  async refresh() {
    try {
      this.update(await api("GET", `/api/consultations/${this.consultation.id}`));
    } catch (err) {
      errors.show(err);
    }
  }

  update(consultation) {
    this.consultation = consultation;
    this.chat.setConsultation(consultation);
    this.call.setConsultation(consultation);
    this.render();
    this.start();
  }

  render() {
    const c = this.consultation;
    const open = this.isOpen();
    this.element.dataset.status = c.status;
    const since = c.started_at
      ? `started ${formatDateTime(c.started_at)}`
      : `waiting since ${formatDateTime(c.created_at)}`;
    const form = c.status === "active" ? this.call.form : c.form;
    this.meta.textContent = `${c.specialty.name} · ${form} · ${since}`;
    this.statusBadge.className = `badge ${c.status}`;
    this.statusBadge.textContent = c.status === "offered" ? "Offered to you" : statusText(c.status);
    const offered = c.status === "offered";
    this.endButton.hidden = !open || offered;
    this.closeButton.hidden = open;
    if (!open) this.outcome.ended();
    this.offer.hidden = !offered;
    this.grid.hidden = offered;
    if (offered) {
      const until = this.offerExpiresAt
        ? ` Please answer by ${new Date(this.offerExpiresAt).toLocaleTimeString()}.`
        : "";
      this.offerText.textContent =
        `${c.patient.name} is waiting for ${c.specialty.name} (${c.form}).` + until;
    }
  }

  async answerOffer(event) {
    const id = this.consultation.id;
    const button = event === "queue:accept" ? this.acceptButton : this.declineButton;
    await guarded(errors, button, async () => {
      const consultation = await emitAck(state.socket, event, { consultation_id: id });
      if (event === "queue:accept") this.update(consultation);
      else this.close();
    });
  }

  /** The patient's timeline (newest first, a page at a time), and this consultation's saved
   * recommendations: the timeline's recommendations since it began. */
  async loadRecord() {
    this.record.me = state.me;
    const c = this.consultation;
    const query = new URLSearchParams({ kind: "recommendation", from: c.created_at, limit: "100" });
    const path = `/api/patients/${c.patient.id}/timeline?${query}`;
    const [{ items }] = await Promise.all([api("GET", path), this.record.load()]);
    const mine = items.filter((item) => item.consultation_id === c.id).reverse(); // oldest first
    this.savedList.replaceChildren();
    this.noneSaved.hidden = false;
    for (const item of mine) this.addSaved(item.recommendation);
  }

  addSaved(recommendation) {
    this.noneSaved.hidden = true;
    this.savedList.append(
      el(
        "li",
        { "data-testid": "saved-recommendation" },
        el("p", { className: "body", text: recommendation.text }),
        el("p", { className: "muted small", text: formatDateTime(recommendation.created_at) }),
      ),
    );
  }

  async end() {
    const id = this.consultation.id;
    await guarded(errors, this.endButton, async () => {
      try {
        this.update(await api("POST", `/api/consultations/${id}/end`, {}));
      } catch (err) {
        // Ended meanwhile (e.g. by the patient): show how it stands, and say so.
        if (err.code === "consultation_ended") {
          this.update(await api("GET", `/api/consultations/${id}`));
        }
        throw err;
      }
    });
    this.render();
  }

  close() {
    this.call.destroy();
    this.chat.destroy();
    state.cards.delete(this.consultation.id);
    this.element.remove();
    renderEmpty();
  }
}

startSession({ errors, enter, beforeLogout, afterLogout });
