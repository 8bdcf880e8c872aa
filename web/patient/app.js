// The patient page: log in, start an online consultation, wait in the queue (place, estimate,
// alternatives to book instead), chat with the doctor, book and cancel visits, read the record.

import {
  $,
  ErrorBanner,
  api,
  bindConnectionIndicator,
  connectSocket,
  el,
  guarded,
  newClientId,
  show,
} from "/static/api.js";
import { startSession } from "/static/session.js";
import { ChatPanel } from "/static/chat.js";
import { CallPanel } from "/static/call.js";
import { TimelineView } from "/static/timeline.js";
import { BookVisit, MyBookings } from "/patient/bookings.js";
import { Alternatives, renderTicket } from "/patient/ticket.js";
import { MyDocuments, documentDeleted } from "/static/documents.js";
import { AskTheDoctor } from "/static/followups.js";
import { MyIssued } from "/patient/issued.js";
import { PeselForm } from "/patient/pesel.js";
import { RatingForms } from "/patient/ratings.js";
import { AccessLog } from "/patient/access_log.js";
import { ResultsView } from "/static/results.js";

const errors = new ErrorBanner($("#error"));
const state = {
  me: null,
  socket: null,
  consultation: null, // the open consultation, or the one that just ended
  // The queue ticket while waiting: {consultation_id, status, place, waiting, eta, doctors,
  // next, alternatives}. Live updates (queue:ticket) carry no next/alternatives: those are
  // kept from the last full ticket, which is fetched again when the situation changes.
  ticket: null,
  ticketUpdates: 0, // live updates received, to tell whether a fetched ticket is still current
  notice: "", // why the consultation stopped or went back to the queue, when the server says
  chat: null,
  call: null, // the call panel of the active consultation (voice, video, form switches)
};

// Rating forms under finished consultations and past visits, put back after each redraw.
const ratingForms = new RatingForms();
const myBookings = new MyBookings({
  errors,
  onChanged: (booking) => {
    refreshTicket().catch((err) => errors.show(err));
    reloadRecord(); // a booked visit is in the timeline
    bookVisit.refresh().catch((err) => errors.show(err));
    // A cancelled booking frees the referral it used.
    if (booking.referral_id) myIssued.load().catch((err) => errors.show(err));
  },
  onLoaded: () => myIssued.bookingsRead(),
  onRender: (bookings) => ratingForms.decorateBookings($("#bookings-past"), bookings),
});
const bookVisit = new BookVisit({
  onBooked: () => {
    myBookings.reload();
    reloadRecord();
    refreshTicket().catch((err) => errors.show(err));
  },
});
const alternatives = new Alternatives({
  onChanged: () => {
    myBookings.reload();
    refreshTicket().catch((err) => errors.show(err));
    bookVisit.refresh().catch((err) => errors.show(err));
  },
  onLeave: () => leaveOrEnd(),
});
const myDocuments = new MyDocuments({
  nodes: {
    form: $("#document-form"),
    file: $("#document-file"),
    description: $("#document-description"),
    button: $("#document-upload"),
    list: $("#documents"),
    empty: $("#documents-empty"),
    error: $("#documents-error"),
  },
  // Into the running consultation's chat; the message also comes back as chat:message.
  onShare: async (doc) => {
    const c = state.consultation;
    if (!c || c.status !== "active") throw new Error("Start a consultation to share a document.");
    const message = await api("POST", `/api/consultations/${c.id}/documents`, {
      document_id: doc.id,
      client_id: newClientId(),
    });
    if (state.chat) state.chat.receive(message);
  },
});
const askTheDoctor = new AskTheDoctor({
  nodes: {
    form: $("#follow-up-form"),
    select: $("#follow-up-consultation"),
    question: $("#follow-up-question"),
    button: $("#follow-up-send"),
    list: $("#follow-ups"),
    empty: $("#follow-ups-empty"),
    error: $("#follow-ups-error"),
  },
});
const myIssued = new MyIssued({
  nodes: { list: $("#issued"), empty: $("#issued-empty") },
  onError: (err) => errors.show(err),
  bookings: () => myBookings.bookings,
  // A referral booked a visit: it is listed under My bookings, and its slot is no longer free.
  onBooked: () => {
    myBookings.reload();
    myIssued.load().catch((err) => errors.show(err));
    refreshTicket().catch((err) => errors.show(err));
    bookVisit.refresh().catch((err) => errors.show(err));
  },
});
// Laboratory and imaging results, with a value's history as a chart.
const myResults = new ResultsView($("#results"), {
  path: "/api/patients/me/results",
  onError: (err) => errors.show(err),
});
const peselForm = new PeselForm({
  nodes: {
    section: $("#pesel-section"),
    form: $("#pesel-form"),
    input: $("#pesel-input"),
    button: $("#pesel-save"),
    error: $("#pesel-error"),
    saved: $("#pesel-saved"),
  },
});
const accessLog = new AccessLog({
  nodes: {
    details: $("#access-log-details"),
    list: $("#access-log"),
    empty: $("#access-log-empty"),
    more: $("#access-log-more"),
    own: $("#access-log-own"),
    refresh: $("#access-log-refresh"),
  },
  errors,
});

// --- session -------------------------------------------------------------------------------

function afterLogout() {
  if (state.socket) state.socket.disconnect();
  if (state.chat) state.chat.destroy();
  Object.assign(state, {
    me: null,
    socket: null,
    consultation: null,
    ticket: null,
    notice: "",
    chat: null,
  });
  setCall(null);
  $("#chat-container").replaceChildren();
  record.clear();
  myBookings.me = null;
  myBookings.clear();
  bookVisit.clear();
  myDocuments.clear();
  askTheDoctor.clear();
  myIssued.clear();
  myResults.clear();
  peselForm.clear();
  ratingForms.clear();
  accessLog.clear();
  alternatives.update(null, null);
  show($("#consultation-section"), false);
}

const PATIENT_SECTIONS = [
  "#start-section",
  "#consultation-section",
  "#book-section",
  "#bookings-section",
  "#record-section",
  "#documents-section",
  "#follow-ups-section",
  "#issued-section",
  "#access-log-section",
  "#results-section",
];

async function enter(me) {
  state.me = me;
  myBookings.me = me;
  show($("#login-section"), false);
  show($("#app-section"));
  $("#whoami").textContent = `${me.name}${me.plan ? ` · ${me.plan} plan` : ""}`;
  show($("#whoami"));
  show($("#logout-button"));
  if (me.role !== "patient") {
    show($("#wrong-role"));
    for (const id of PATIENT_SECTIONS) show($(id), false);
    return;
  }
  show($("#wrong-role"), false);
  for (const id of PATIENT_SECTIONS) {
    if (id !== "#consultation-section") show($(id));
  }
  show($("#identity-note"), me.identity !== "verified");
  // Documents need a verified account, like online consultations.
  const verified = me.identity === "verified";
  show($("#documents-section"), verified);
  connect();
  await Promise.all([
    loadSpecialties(),
    loadRecord(),
    myBookings.load(),
    verified ? myDocuments.load() : null,
    askTheDoctor.load(),
    myIssued.load(),
    myResults.load(),
    peselForm.load(),
    ratingForms.load(),
  ]);
}

// --- live connection -------------------------------------------------------------------------

function connect() {
  const socket = connectSocket();
  state.socket = socket;
  bindConnectionIndicator(socket, $("#connection"), (err) =>
    errors.show(`The live connection was refused: ${err.message}. Please log in again.`),
  );
  // On every (re)connect: catch up with what happened while we were away.
  let reconnect = false;
  socket.on("connect", () => {
    sync().catch((err) => errors.show(err));
    // Documents uploaded or deleted meanwhile (in another tab) were not pushed here.
    if (reconnect && state.me && state.me.identity === "verified") {
      myDocuments.load().catch((err) => errors.show(err));
    }
    // Documents issued, cancelled or renewed, and results received, while away.
    if (reconnect) myIssued.load().catch((err) => errors.show(err));
    if (reconnect) myResults.load().catch((err) => errors.show(err));
    reconnect = true;
  });
  socket.on("consultation:matched", ({ consultation }) => {
    state.notice = "";
    setConsultation(consultation);
  });
  socket.on("consultation:ended", ({ consultation }) => {
    if (state.consultation && state.consultation.id === consultation.id) {
      setConsultation(consultation);
    }
    loadRecord().catch((err) => errors.show(err));
  });
  socket.on("chat:message", ({ message }) => {
    if (state.chat) state.chat.receive(message);
  });
  // Read receipts and typing notices; the chat shows "reconnecting" while the socket is down.
  socket.on("chat:read", (receipt) => state.chat && state.chat.receipt(receipt));
  socket.on("chat:typing", (notice) => state.chat && state.chat.typing(notice));
  socket.on("disconnect", () => state.chat && state.chat.setOnline(false));
  socket.on("record:changed", () => reloadRecord());
  // A document uploaded or deleted in another tab (or this one: the lists ignore repeats); a
  // chat message that shared a deleted one says it is deleted.
  socket.on("document:uploaded", ({ document: doc }) => myDocuments.added(doc));
  socket.on("document:deleted", ({ document: doc }) => {
    documentDeleted(doc);
    myDocuments.removed(doc.id);
  });
  // The doctor answered a follow-up question.
  socket.on("follow-up:answered", ({ follow_up: followUp }) => {
    askTheDoctor.receive(followUp);
    reloadRecord();
  });
  // The visit's outcome: documents issued or cancelled, a renewal decided (a new package);
  // the timeline holds them too.
  for (const event of ["outcome:issued", "outcome:cancelled", "renewal:decided"]) {
    socket.on(event, () => {
      myIssued.load().catch((err) => errors.show(err));
      reloadRecord();
    });
  }
  socket.on("result:received", ({ result }) => myResults.received(result));
  // The walk-in queue: a new place, estimate or doctors' state.
  socket.on("queue:ticket", (update) => {
    const c = state.consultation;
    if (!c || c.id !== update.consultation_id) {
      // A ticket this page does not know (started in another tab, or before the answer to
      // Start arrived): catch up, unless a consultation of this page is still open.
      if (!c || !isOpen(c)) scheduleSync();
      return;
    }
    if (!isQueued(c)) return;
    const before = state.ticket && state.ticket.consultation_id === c.id ? state.ticket : null;
    state.ticketUpdates += 1;
    state.ticket = { ...(before || { next: "", alternatives: [] }), ...update };
    if (isQueued(update) && update.status !== c.status) {
      state.consultation = { ...c, status: update.status };
    }
    // "next" and the alternatives depend on the situation: fetch them when it changed (and
    // meanwhile say nothing rather than something no longer true).
    const changed = !before || situation(before) !== situation(state.ticket);
    if (changed) state.ticket.next = "";
    renderConsultation();
    if (changed) refreshTicket().catch((err) => errors.show(err));
  });
  // Taken out of the queue after the connection was lost too long.
  socket.on("queue:dropped", ({ consultation_id: id }) => {
    if (!state.consultation || state.consultation.id !== id) return;
    state.notice =
      "You were taken out of the queue because this page was disconnected for too long. " +
      "Press Start to join the queue again.";
    refreshConsultation().catch((err) => errors.show(err));
  });
  // The doctor's console was lost: the consultation is back in the queue, ahead of everyone.
  // A scheduler moved the ticket to another specialty's queue: same ticket, new queue.
  socket.on("queue:moved", ({ consultation }) => {
    if (!state.consultation || state.consultation.id !== consultation.id) return;
    state.notice =
      `A scheduler moved you to the ${consultation.specialty.name} queue, where you keep ` +
      "the time you have already waited.";
    refreshConsultation().catch((err) => errors.show(err));
  });
  socket.on("consultation:interrupted", ({ consultation_id: id }) => {
    if (!state.consultation || state.consultation.id !== id) return;
    state.notice =
      "The connection to your doctor was lost. You are back at the front of the queue: the " +
      "next free doctor will take you, and your conversation so far is kept.";
    refreshConsultation().catch((err) => errors.show(err));
  });
}

/** What "next" and the alternatives depend on; when it changes, the full ticket is fetched. */
function situation(t) {
  const doctors = t.doctors || {};
  // long_wait: the server's own rule for offering alternative slots (its threshold).
  return JSON.stringify([t.status, t.place === 0, (doctors.online || 0) > 0, Boolean(t.long_wait)]);
}

async function refreshConsultation() {
  if (!state.consultation) return;
  const consultation = await api("GET", `/api/consultations/${state.consultation.id}`);
  if (isQueued(consultation)) {
    const answer = await loadTicket();
    if (answer && answer.consultation.id === consultation.id) state.ticket = asTicket(answer);
  }
  setConsultation(consultation);
  await loadRecord();
}

/** The full ticket of the queued consultation: the place, estimate, next step, alternatives. */
let ticketRequest = null;
let ticketAgain = false;
async function refreshTicket() {
  // One request at a time; a refresh asked for meanwhile runs once after it.
  if (ticketRequest) {
    ticketAgain = true;
    return ticketRequest;
  }
  ticketRequest = (async () => {
    do {
      ticketAgain = false;
      await fetchTicket();
    } while (ticketAgain);
  })();
  try {
    await ticketRequest;
  } finally {
    ticketRequest = null;
  }
}

async function fetchTicket() {
  const c = state.consultation;
  if (!c || !isQueued(c)) return;
  const updatesBefore = state.ticketUpdates;
  const answer = await loadTicket();
  const now = state.consultation;
  if (!now || now.id !== c.id || !isQueued(now)) return;
  if (!answer || answer.consultation.id !== c.id) {
    // No longer queued (taken by a doctor, or dropped): see how it stands.
    await refreshConsultation();
    return;
  }
  const fresh = asTicket(answer);
  if (state.ticketUpdates === updatesBefore) {
    state.ticket = fresh;
    state.consultation = answer.consultation;
  } else {
    // A live update came in meanwhile and may be newer: keep its place and estimate.
    state.ticket = { ...state.ticket, next: fresh.next, alternatives: fresh.alternatives };
  }
  renderConsultation();
}

/** The queue ticket of the patient, or null when they are not queued. */
async function loadTicket() {
  try {
    return await api("GET", "/api/queue/ticket");
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
}

async function sync() {
  const { consultations } = await api("GET", "/api/consultations/open");
  if (consultations.length) {
    const current = consultations[0];
    if (isQueued(current)) {
      const answer = await loadTicket();
      state.ticket = answer ? asTicket(answer) : null;
    }
    setConsultation(current);
  } else if (state.consultation && isOpen(state.consultation)) {
    // It ended while we were disconnected.
    const wasQueued = isQueued(state.consultation);
    await refreshConsultation();
    if (wasQueued && state.consultation.status === "cancelled" && !state.notice) {
      state.notice =
        "While this page was disconnected, your place in the queue was given up. " +
        "Press Start to join the queue again.";
      renderConsultation();
    }
  }
  if (state.chat) await state.chat.catchUp();
}

let syncTimer = null;
function scheduleSync() {
  if (syncTimer) return;
  syncTimer = setTimeout(() => {
    syncTimer = null;
    sync().catch((err) => errors.show(err));
  }, 200);
}

// --- starting and ending -----------------------------------------------------------------

async function loadSpecialties() {
  const { specialties } = await api("GET", "/api/specialties");
  const select = $("#specialty");
  const previous = select.value;
  select.replaceChildren(
    ...specialties.map((s) => {
      const covered = s.covered !== false;
      return el("option", {
        value: s.code,
        disabled: !covered,
        text: covered ? s.name : `${s.name} — not covered by your plan`,
      });
    }),
  );
  const firstCovered = specialties.find((s) => s.covered !== false);
  if (previous && specialties.some((s) => s.code === previous && s.covered !== false)) {
    select.value = previous;
  } else if (firstCovered) {
    select.value = firstCovered.code;
  }
  bookVisit.setSpecialties(specialties);
}

$("#start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await guarded(errors, $("#start-button"), async () => {
    const form = new FormData($("#start-form"));
    const answer = await api("POST", "/api/consultations", {
      specialty: form.get("specialty"),
      form: form.get("form"),
    });
    // The answer is a queue ticket ({consultation, place, eta, next, alternatives, ...}).
    state.ticket = asTicket(answer);
    state.notice = "";
    setConsultation(answer.consultation);
  });
  renderConsultation();
});

$("#end-button").addEventListener("click", () => leaveOrEnd());

/** Leaves the queue, or ends the consultation under way. */
async function leaveOrEnd() {
  const c = state.consultation;
  if (!c || !isOpen(c)) return;
  await guarded(errors, $("#end-button"), async () => {
    try {
      setConsultation(await api("POST", `/api/consultations/${c.id}/end`, {}));
    } catch (err) {
      // Ended meanwhile (by the doctor, or dropped): show how it stands, and say so.
      if (err.code === "consultation_ended") await refreshConsultation();
      throw err;
    }
    await loadRecord();
  });
  renderConsultation();
}

// --- the consultation ----------------------------------------------------------------------

const isQueued = (c) => c.status === "waiting" || c.status === "offered";
const isOpen = (c) => isQueued(c) || c.status === "active";

function setConsultation(consultation) {
  const sameOne = state.consultation && state.consultation.id === consultation.id;
  state.consultation = consultation;
  if (!isQueued(consultation)) state.ticket = null;
  if (consultation.status === "active" || (sameOne && state.chat)) {
    if (!state.chat || state.chat.consultation.id !== consultation.id) {
      if (state.chat) state.chat.destroy();
      state.chat = new ChatPanel({
        consultation,
        me: state.me,
        socket: () => state.socket,
        onError: (err) => errors.show(err),
      });
      $("#chat-container").replaceChildren(state.chat.element);
      state.chat.catchUp().catch((err) => errors.show(err));
    } else {
      state.chat.setConsultation(consultation);
    }
  } else {
    if (state.chat) state.chat.destroy();
    state.chat = null;
    $("#chat-container").replaceChildren();
  }
  setCall(consultation.status === "active" ? consultation : null);
  renderConsultation();
  const t = state.ticket;
  if (isQueued(consultation) && (!t || t.consultation_id !== consultation.id)) {
    refreshTicket().catch((err) => errors.show(err));
  }
}

/** The call panel follows the active consultation: made when it starts, gone when it ends. */
function setCall(consultation) {
  if (state.call && (!consultation || state.call.consultation.id !== consultation.id)) {
    state.call.destroy();
    state.call = null;
    $("#call-container").replaceChildren();
  }
  if (!consultation || state.call) return;
  state.call = new CallPanel({
    consultation,
    me: state.me,
    socket: () => state.socket,
    onError: (err) => errors.show(err),
    // The status line says the form now, not the one chosen at Start (switches change it).
    onForm: () => {
      if (state.consultation) $("#consultation-status").textContent = statusLine(state.consultation);
    },
  });
  $("#call-container").replaceChildren(state.call.element);
  state.call.start().catch((err) => errors.show(err));
}

function renderConsultation() {
  const c = state.consultation;
  const open = Boolean(c && isOpen(c));
  myDocuments.setCanShare(Boolean(c && c.status === "active"));
  show($("#consultation-section"), Boolean(c));
  // A basic (unverified) account may press Start too: the server says why it is refused.
  $("#start-button").disabled = open;
  $("#start-section").classList.toggle("dimmed", open);
  placeConsultationFirst(open);
  const ticket = c && state.ticket && state.ticket.consultation_id === c.id ? state.ticket : null;
  renderTicket(c, ticket);
  alternatives.update(c, ticket ? ticket.alternatives : null);
  if (!c) return;
  const section = $("#consultation-section");
  section.dataset.status = c.status;
  section.dataset.consultationId = c.id;
  const endButton = $("#end-button");
  show(endButton, open);
  endButton.textContent = isQueued(c) ? "Leave the queue" : "End consultation";
  $("#consultation-status").textContent = statusLine(c);
  $("#consultation-notice").textContent = state.notice;
  show($("#consultation-notice"), Boolean(state.notice));
  $("#chat-container").hidden = !state.chat;
  if (c.status === "active") {
    state.chat.input.focus({ preventScroll: true });
  }
}

/** While a consultation is open, it (and its call) comes first on screen, above the Start form
 * it disables; otherwise Start does. The Start section is the one moved, in the DOM too (so
 * the keyboard order is the order seen), and it never holds the focus or a playing video. */
function placeConsultationFirst(open) {
  const start = $("#start-section");
  const consultation = $("#consultation-section");
  const first = consultation.compareDocumentPosition(start) & Node.DOCUMENT_POSITION_FOLLOWING;
  if (open && !first) consultation.after(start);
  if (!open && first) consultation.before(start);
}

function statusLine(c) {
  const form = c.status === "active" && state.call ? state.call.form : c.form;
  const what = `${c.specialty.name}, ${form}`;
  switch (c.status) {
    case "waiting":
      return `Waiting for a doctor (${what}).`;
    case "offered":
      return `Connecting you to a doctor (${what}).`;
    case "active":
      return `With ${c.doctor.name} (${what}).`;
    case "ended":
      return (
        `Your consultation with ${c.doctor ? c.doctor.name : "the doctor"} has ended. ` +
        "It is in your record below."
      );
    case "cancelled":
      return state.notice ? "You are no longer in the queue." : "You left the queue.";
    default:
      return c.status;
  }
}

/** A ticket from POST /api/consultations or GET /api/queue/ticket, in the shape of an update. */
function asTicket(answer) {
  if (!answer) return null;
  const { consultation, ...rest } = answer;
  return {
    ...rest,
    alternatives: rest.alternatives || [],
    consultation_id: consultation.id,
    status: consultation.status,
  };
}

// --- the record ---------------------------------------------------------------------------

// Everything in the record, newest first, a page at a time, filtered by kind and days; rating
// forms under its finished consultations.
const record = new TimelineView($("#record"), {
  path: "/api/patients/me/timeline",
  onChange: (items) => {
    const consultations = items.filter((item) => item.kind === "consultation");
    ratingForms.decorateRecord($("#record"), consultations);
  },
  onError: (err) => errors.show(err),
});
// Follow-up questions are asked about consultations that ended in the last 14 days: the
// timeline's consultations since a day more than that, whatever the timeline's filters.
const ASKABLE_DAYS = 15;

async function loadAskable() {
  const since = new Date(Date.now() - ASKABLE_DAYS * 86_400_000).toISOString();
  const query = new URLSearchParams({ kind: "consultation", from: since, limit: "100" });
  const { items } = await api("GET", `/api/patients/me/timeline?${query}`);
  askTheDoctor.setRecord({ entries: items });
}

async function loadRecord() {
  record.me = state.me;
  await Promise.all([record.load(), loadAskable()]);
}

/** After a push: the timeline again, once for the pushes that come together (the end of a
 * visit brings several). */
let recordTimer = null;
function reloadRecord() {
  if (!state.me || recordTimer) return;
  recordTimer = setTimeout(() => {
    recordTimer = null;
    if (state.me) loadRecord().catch((err) => errors.show(err));
  }, 150);
}

$("#results-refresh").addEventListener("click", () =>
  guarded(errors, $("#results-refresh"), () => myResults.load()),
);
$("#record-refresh").addEventListener("click", () =>
  guarded(errors, $("#record-refresh"), loadRecord),
);

startSession({ errors, enter, afterLogout });
