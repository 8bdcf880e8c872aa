// The patient page: log in, start an online consultation, chat with the doctor, read the record.

import {
  $,
  ErrorBanner,
  api,
  bindConnectionIndicator,
  connectSocket,
  currentUser,
  el,
  guarded,
  login,
  logout,
  show,
} from "/static/api.js";
import { ChatPanel } from "/static/chat.js";
import { renderRecord } from "/static/record.js";

const errors = new ErrorBanner($("#error"));
const state = {
  me: null,
  socket: null,
  consultation: null, // the open consultation, or the one that just ended
  ticket: null, // the queue ticket while waiting (place, estimate, what happens next)
  notice: "", // why the consultation stopped, when the server says
  chat: null,
};

// --- session -------------------------------------------------------------------------------

async function boot() {
  try {
    const me = await currentUser();
    if (me) await enter(me);
    else showLogin();
  } catch (err) {
    showLogin();
    errors.show(err);
  } finally {
    show($("#loading"), false);
  }
}

function showLogin() {
  show($("#login-section"));
  show($("#app-section"), false);
  for (const id of ["#whoami", "#logout-button", "#connection"]) show($(id), false);
  $("#login-email").focus();
}

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await guarded(errors, $("#login-button"), async () => {
    const { user } = await login($("#login-email").value.trim(), $("#login-password").value);
    $("#login-password").value = "";
    await enter(user);
  });
});

$("#logout-button").addEventListener("click", () =>
  guarded(errors, $("#logout-button"), async () => {
    await logout();
    if (state.socket) state.socket.disconnect();
    Object.assign(state, {
      me: null,
      socket: null,
      consultation: null,
      ticket: null,
      notice: "",
      chat: null,
    });
    $("#chat-container").replaceChildren();
    $("#record").replaceChildren();
    show($("#consultation-section"), false);
    showLogin();
  }),
);

async function enter(me) {
  state.me = me;
  show($("#login-section"), false);
  show($("#app-section"));
  $("#whoami").textContent = `${me.name}${me.plan ? ` · ${me.plan} plan` : ""}`;
  show($("#whoami"));
  show($("#logout-button"));
  if (me.role !== "patient") {
    show($("#wrong-role"));
    for (const id of ["#start-section", "#consultation-section", "#record-section"]) {
      show($(id), false);
    }
    return;
  }
  show($("#wrong-role"), false);
  show($("#identity-note"), me.identity !== "verified");
  connect();
  await Promise.all([loadSpecialties(), loadRecord()]);
}

// --- live connection -------------------------------------------------------------------------

function connect() {
  const socket = connectSocket();
  state.socket = socket;
  bindConnectionIndicator(socket, $("#connection"), (err) =>
    errors.show(`The live connection was refused: ${err.message}. Please log in again.`),
  );
  // On every (re)connect: catch up with what happened while we were away.
  socket.on("connect", () => sync().catch((err) => errors.show(err)));
  socket.on("consultation:matched", ({ consultation }) => setConsultation(consultation));
  socket.on("consultation:ended", ({ consultation }) => {
    if (state.consultation && state.consultation.id === consultation.id) {
      setConsultation(consultation);
    }
    loadRecord().catch((err) => errors.show(err));
  });
  socket.on("chat:message", ({ message }) => {
    if (state.chat) state.chat.receive(message);
  });
  socket.on("record:changed", () => loadRecord().catch((err) => errors.show(err)));
  // The walk-in queue: a new place or estimate; leaving the queue or a visit cut short.
  socket.on("queue:ticket", (update) => {
    const c = state.consultation;
    if (!c || c.id !== update.consultation_id || !isQueued(c)) return;
    state.ticket = update; // "next" is not in updates: it was said for the old place
    if (isQueued(update)) state.consultation = { ...c, status: update.status };
    renderConsultation();
  });
  const stopped = (prefix) => ({ consultation_id: id, reason }) => {
    if (!state.consultation || state.consultation.id !== id) return;
    state.notice = `${prefix}${reason ? ` (${reason})` : ""}.`;
    refreshConsultation().catch((err) => errors.show(err));
  };
  socket.on("queue:dropped", stopped("You were taken out of the queue"));
  socket.on("consultation:interrupted", stopped("The consultation was interrupted"));
}

async function refreshConsultation() {
  if (!state.consultation) return;
  setConsultation(await api("GET", `/api/consultations/${state.consultation.id}`));
  await loadRecord();
}

/** The queue ticket of a queued consultation; null where the server has no queue tickets. */
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
    if (isQueued(current)) state.ticket = asTicket(await loadTicket());
    setConsultation(current);
  } else if (state.consultation && isOpen(state.consultation)) {
    // It ended while we were disconnected.
    await refreshConsultation();
  }
  if (state.chat) await state.chat.catchUp();
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
}

$("#start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await guarded(errors, $("#start-button"), async () => {
    const form = new FormData($("#start-form"));
    const answer = await api("POST", "/api/consultations", {
      specialty: form.get("specialty"),
      form: form.get("form"),
    });
    // The answer is a queue ticket ({consultation, place, eta, next, ...}) or, from a server
    // without the walk-in queue, the consultation itself.
    const consultation = answer.consultation || answer;
    state.ticket = answer.consultation ? asTicket(answer) : null;
    state.notice = "";
    setConsultation(consultation);
  });
  renderConsultation();
});

$("#end-button").addEventListener("click", async () => {
  const c = state.consultation;
  if (!c) return;
  await guarded(errors, $("#end-button"), async () => {
    setConsultation(await api("POST", `/api/consultations/${c.id}/end`, {}));
    await loadRecord();
  });
  renderConsultation();
});

// --- the consultation ----------------------------------------------------------------------

const isQueued = (c) => c.status === "waiting" || c.status === "offered";
const isOpen = (c) => isQueued(c) || c.status === "active";

function setConsultation(consultation) {
  const sameOne = state.consultation && state.consultation.id === consultation.id;
  state.consultation = consultation;
  if (!isQueued(consultation)) state.ticket = null;
  if (consultation.status === "active" || (sameOne && state.chat)) {
    if (!state.chat || state.chat.consultation.id !== consultation.id) {
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
    state.chat = null;
    $("#chat-container").replaceChildren();
  }
  renderConsultation();
}

function renderConsultation() {
  const c = state.consultation;
  const open = Boolean(c && isOpen(c));
  show($("#consultation-section"), Boolean(c));
  // A basic (unverified) account may press Start too: the server says why it is refused.
  $("#start-button").disabled = open;
  $("#start-section").classList.toggle("dimmed", open);
  if (!c) return;
  const section = $("#consultation-section");
  section.dataset.status = c.status;
  section.dataset.consultationId = c.id;
  const endButton = $("#end-button");
  show(endButton, open);
  endButton.textContent = isQueued(c) ? "Leave the queue" : "End consultation";
  $("#consultation-status").textContent = statusLine(c);
  const details = [ticketLine(c), state.notice].filter(Boolean).join(" ");
  $("#consultation-details").textContent = details;
  show($("#consultation-details"), Boolean(details));
  $("#chat-container").hidden = !state.chat;
  if (c.status === "active") {
    state.chat.input.focus({ preventScroll: true });
  }
}

function statusLine(c) {
  const what = `${c.specialty.name}, ${c.form}`;
  switch (c.status) {
    case "waiting":
      return `Waiting for a doctor (${what}). You will be connected as soon as one is free.`;
    case "offered":
      return `A doctor is being connected to you now (${what}).`;
    case "active":
      return `With ${c.doctor.name} (${what}).`;
    case "ended":
      return (
        `Your consultation with ${c.doctor ? c.doctor.name : "the doctor"} has ended. ` +
        "It is in your record below."
      );
    case "cancelled":
      return "You left the queue. The consultation was cancelled.";
    default:
      return c.status;
  }
}

/** Place in line and the wait estimate, when the server gives a queue ticket. */
function ticketLine(c) {
  const t = state.ticket;
  if (!t || t.consultation_id !== c.id || !isQueued(c)) return "";
  const parts = [];
  const eta = t.eta || {};
  if (t.place > 0) {
    parts.push(`You are number ${t.place} in line.`);
    if (eta.low_minutes != null && eta.high_minutes != null) {
      parts.push(`Estimated wait: ${eta.low_minutes}–${eta.high_minutes} min.`);
    } else {
      parts.push("No doctor for this specialty is online right now.");
    }
  }
  if (t.next) parts.push(t.next);
  return parts.join(" ");
}

/** A ticket from POST /api/consultations or GET /api/queue/ticket, in the shape of an update. */
function asTicket(answer) {
  if (!answer) return null;
  const { consultation, alternatives, ...rest } = answer;
  return { ...rest, consultation_id: consultation.id, status: consultation.status };
}

// --- the record --------------------------------------------------------------------------

async function loadRecord() {
  const record = await api("GET", "/api/patients/me/record");
  renderRecord($("#record"), record, state.me);
}

$("#record-refresh").addEventListener("click", () =>
  guarded(errors, $("#record-refresh"), loadRecord),
);

boot();
