// The scheduler dashboard: every queue live (waiting, waits, doctors, consultations in
// progress, breaches, the last hour), and the actions on it: move a patient to another
// specialty, drop a stale ticket, mark a doctor away. Doctors' weekly hours: hours.js;
// prescription renewal requests handed to another doctor: renewals.js; ratings: ratings.js.

import {
  $,
  ErrorBanner,
  api,
  bindConnectionIndicator,
  connectSocket,
  el,
  guarded,
  show,
} from "/static/api.js";
import { startSession } from "/static/session.js";
import { resetHours, startHours } from "/scheduler/hours.js";
import { resetRenewals, startRenewals } from "/scheduler/renewals.js";
import { resetRatings, startRatings } from "/scheduler/ratings.js";
import { resetIdentity, startIdentity } from "/scheduler/identity.js";

const SVG = "http://www.w3.org/2000/svg";
const errors = new ErrorBanner($("#error"));
const state = {
  me: null,
  socket: null,
  overview: null,
  receivedAt: 0, // performance.now() when the overview arrived: waits tick on from there
  timer: null,
};

// --- session -------------------------------------------------------------------------------

function afterLogout() {
  if (state.socket) state.socket.disconnect();
  clearInterval(state.timer);
  Object.assign(state, { me: null, socket: null, overview: null, timer: null });
  hold.pending = null;
  $("#queues").replaceChildren();
  showNotice("");
  resetHours();
  resetRenewals();
  resetRatings();
  resetIdentity();
}

async function enter(me) {
  state.me = me;
  show($("#login-section"), false);
  show($("#app-section"));
  $("#whoami").textContent = me.name;
  show($("#whoami"));
  show($("#logout-button"));
  const isScheduler = me.role === "scheduler";
  show($("#wrong-role"), !isScheduler);
  show($("#dashboard"), isScheduler);
  if (!isScheduler) return;
  connect();
  state.timer = setInterval(tick, 1000);
  startHours();
  startRenewals();
  startIdentity();
}

// --- live figures --------------------------------------------------------------------------

function connect() {
  const socket = connectSocket();
  state.socket = socket;
  bindConnectionIndicator(socket, $("#connection"), (err) =>
    errors.show(`The live connection was refused: ${err.message}. Please log in again.`),
  );
  // On every (re)connect the whole picture is fetched again; pushes then keep it current.
  socket.on("connect", () => refresh().catch((err) => errors.show(err)));
  socket.on("scheduler:overview", (overview) => receive(overview));
  startRatings(socket); // the ratings' figures: read at each connect, then pushed
}

async function refresh() {
  receive(await api("GET", "/api/scheduler/queues"));
}

// Up to four overviews a second redraw the queues. Not under the scheduler's hand: while a
// button is being pressed, or (for at most 5 s) while a move menu has the focus, the newest
// overview waits.
const HOLD_MENU_MS = 5000;
const hold = { pointer: false, pending: null, since: 0, retry: null };
$("#queues").addEventListener("pointerdown", () => {
  hold.pointer = true;
});
for (const name of ["pointerup", "pointercancel"]) {
  document.addEventListener(name, () => {
    hold.pointer = false;
    setTimeout(flush, 0); // after the click that follows this pointerup
  });
}
$("#queues").addEventListener("focusout", () => setTimeout(flush, 0));

function receive(overview) {
  hold.pending = overview;
  flush();
}

function flush() {
  if (!hold.pending || hold.pointer) return;
  const focused = document.activeElement;
  const menu =
    focused && focused.tagName === "SELECT" && $("#queues").contains(focused) ? focused : null;
  if (menu) {
    if (!hold.since) hold.since = Date.now();
    if (Date.now() - hold.since < HOLD_MENU_MS) {
      hold.retry ??= setTimeout(() => {
        hold.retry = null;
        flush();
      }, 500);
      return;
    }
  }
  hold.since = 0;
  const overview = hold.pending;
  hold.pending = null;
  render(overview);
  if (menu) {
    const again = document.querySelector(
      `select[data-role=move-to][data-ticket="${menu.dataset.ticket}"]`,
    );
    if (again) again.focus();
  }
}

/** Seconds since the overview was computed (the waits keep growing between pushes). */
function elapsed() {
  return (performance.now() - state.receivedAt) / 1000;
}

function render(overview) {
  // Keep what the scheduler was choosing in the move menus across a re-render.
  const chosen = new Map(
    [...document.querySelectorAll("select[data-role=move-to]")].map((s) => [
      s.dataset.ticket,
      s.value,
    ]),
  );
  state.overview = overview;
  state.receivedAt = performance.now();
  $("#threshold").textContent = duration(overview.wait_breach_seconds);
  $("#queues").replaceChildren(...overview.specialties.map(specialtyCard));
  for (const select of document.querySelectorAll("select[data-role=move-to]")) {
    const value = chosen.get(select.dataset.ticket);
    if (value && [...select.options].some((o) => o.value === value)) select.value = value;
  }
  tick();
}

/** Every second: waits grow, and a queue may cross the breach threshold between pushes. */
function tick() {
  const overview = state.overview;
  if (!overview) return;
  const extra = elapsed();
  for (const node of document.querySelectorAll("[data-waited]")) {
    node.textContent = duration(Number(node.dataset.waited) + extra);
  }
  let breaches = 0;
  for (const node of document.querySelectorAll("[data-longest]")) {
    const breach = Number(node.dataset.longest) + extra > overview.wait_breach_seconds;
    node.classList.toggle("breach", breach);
    if (node.matches(".specialty-card")) {
      if (breach) breaches += 1;
      const badge = node.querySelector("[data-role=breach-badge]");
      badge.hidden = !breach;
    }
  }
  const waiting = overview.specialties.reduce((sum, s) => sum + s.waiting, 0);
  const inProgress = overview.specialties.reduce((sum, s) => sum + s.in_progress, 0);
  const summary = $("#summary");
  summary.dataset.state = breaches ? "breach" : "ok";
  summary.textContent =
    `${plural(waiting, "patient")} waiting, ${plural(inProgress, "consultation")} in progress. ` +
    (breaches ? `${plural(breaches, "specialty", "specialties")} in breach.` : "No breach.");
}

// --- one specialty -------------------------------------------------------------------------

function specialtyCard(s) {
  const code = s.specialty.code;
  const card = el(
    "article",
    {
      className: "card specialty-card",
      "data-testid": "specialty-card",
      dataset: { specialty: code },
      "aria-labelledby": `title-${code}`,
    },
    el(
      "div",
      { className: "card-head" },
      el(
        "h2",
        { id: `title-${code}` },
        s.specialty.name,
        " ",
        el("span", {
          className: "badge breach-badge",
          text: "Breach",
          hidden: !s.breach,
          "data-testid": "breach-badge",
          dataset: { role: "breach-badge" },
        }),
      ),
      historyChart(s.history, s.specialty.name),
    ),
    figuresTable(s),
    ticketsSection(s),
    doctorsSection(s),
  );
  if (s.longest_wait_seconds !== null) card.dataset.longest = s.longest_wait_seconds;
  card.classList.toggle("breach", s.breach);
  return card;
}

function figuresTable(s) {
  const row = (label, f, testid) => {
    const longest = waitCell(f.longest_wait_seconds, "longest-wait");
    const tr = el(
      "tr",
      { "data-testid": testid, dataset: { form: f.form || "all" } },
      el("th", { scope: "row", text: label }),
      el("td", { "data-testid": "waiting-count", text: String(f.waiting) }),
      el("td", { text: String(f.offered) }),
      longest,
      waitCell(f.median_wait_seconds, "median-wait"),
      el("td", { "data-testid": "doctors-online", text: String(f.doctors.online) }),
      el("td", { text: String(f.doctors.busy) }),
      el("td", { text: String(f.doctors.away) }),
      el("td", { "data-testid": "in-progress", text: String(f.in_progress) }),
    );
    if (f.longest_wait_seconds !== null) tr.dataset.longest = f.longest_wait_seconds;
    return tr;
  };
  const head = [
    ["", ""],
    ["Waiting", "patients queued, offered ones included"],
    ["Offered", "offered to a doctor who has not accepted yet"],
    ["Longest", "the longest wait now"],
    ["Median", "the median wait now"],
    ["Online", "doctors online (free or busy)"],
    ["Busy", "doctors whose capacity is full"],
    ["Away", "doctors away, or whose console dropped"],
    ["Active", "consultations in progress"],
  ];
  const table = el(
    "table",
    { className: "figures" },
    el("caption", { className: "visually-hidden", text: `${s.specialty.name}: the queues now` }),
    el(
      "thead",
      {},
      el("tr", {}, ...head.map(([h, title]) => el("th", { scope: "col", text: h, title }))),
    ),
    el(
      "tbody",
      {},
      row("All forms", s, "figures-all"),
      ...s.forms.map((f) => row(capitalise(f.form), f, "figures-form")),
    ),
  );
  return el("div", { className: "scroll" }, table);
}

/** A wait that keeps growing between pushes (every queued patient's wait grows alike, so the
 * longest and the median do too); "—" when nobody waits. */
function waitCell(seconds, testid) {
  const cell = el("td", { "data-testid": testid });
  if (seconds === null) cell.textContent = "—";
  else cell.dataset.waited = seconds;
  return cell;
}

function ticketsSection(s) {
  const others = state.overview.specialties.filter((o) => o.specialty.code !== s.specialty.code);
  if (!s.tickets.length) {
    return el("p", {
      className: "muted small",
      "data-testid": "no-tickets",
      text: "Nobody waiting.",
    });
  }
  const rows = s.tickets.map((ticket) => {
    const select = el(
      "select",
      {
        "aria-label": `Move ${ticket.patient.name} to`,
        "data-testid": "move-select",
        dataset: { role: "move-to", ticket: String(ticket.consultation_id) },
      },
      ...others.map((o) => el("option", { value: o.specialty.code, text: o.specialty.name })),
    );
    const moveButton = el("button", {
      type: "button",
      className: "secondary",
      text: "Move",
      "data-testid": "move-ticket",
    });
    moveButton.addEventListener("click", () =>
      act(
        moveButton,
        `/api/scheduler/tickets/${ticket.consultation_id}/move`,
        {
          specialty: select.value,
        },
        (c) => `${c.patient.name} moved to ${c.specialty.name}.`,
      ),
    );
    const dropButton = el("button", {
      type: "button",
      className: "danger",
      text: "Drop",
      "data-testid": "drop-ticket",
    });
    dropButton.addEventListener("click", () =>
      act(
        dropButton,
        `/api/scheduler/tickets/${ticket.consultation_id}/drop`,
        {},
        (c) => `The ticket of ${c.patient.name} was dropped.`,
      ),
    );
    const status =
      ticket.status === "offered"
        ? `offered to ${ticket.doctor ? ticket.doctor.name : "a doctor"}`
        : `place ${ticket.place}`;
    return el(
      "tr",
      { "data-testid": "ticket-row", dataset: { consultationId: String(ticket.consultation_id) } },
      el("td", { "data-testid": "ticket-patient", text: ticket.patient.name }),
      el("td", { text: capitalise(ticket.form) }),
      el("td", { text: ticket.returned ? `${status} (returned)` : status }),
      el("td", { "data-testid": "ticket-waited", dataset: { waited: ticket.waited_seconds } }),
      el(
        "td",
        { className: "row-actions" },
        others.length ? [select, moveButton] : null,
        dropButton,
      ),
    );
  });
  const more = s.waiting - s.tickets.length;
  return el(
    "details",
    { className: "tickets", open: true },
    el("summary", { text: `Waiting patients (${s.waiting})` }),
    el(
      "div",
      { className: "scroll" },
      el(
        "table",
        { className: "list" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ...["Patient", "Form", "Status", "Waited", "Actions"].map((h) =>
              el("th", { scope: "col", text: h }),
            ),
          ),
        ),
        el("tbody", {}, ...rows),
      ),
    ),
    more > 0 ? el("p", { className: "muted small", text: `…and ${more} more.` }) : null,
  );
}

function doctorsSection(s) {
  if (!s.doctor_list.length) {
    return el("p", {
      className: "muted small",
      "data-testid": "no-doctors",
      text: "No doctor online or away for this specialty.",
    });
  }
  const items = s.doctor_list.map((d) => {
    const away = el("button", {
      type: "button",
      className: "secondary",
      text: "Mark away",
      "data-testid": "mark-away",
      hidden: d.state === "away",
    });
    away.addEventListener("click", () =>
      act(away, `/api/scheduler/doctors/${d.id}/away`, {}, (out) => {
        const n = out.withdrawn.length;
        return (
          `${out.doctor.name} is away` +
          (n ? `; ${plural(n, "offer")} went back to the queue.` : ".")
        );
      }),
    );
    return el(
      "li",
      { "data-testid": "doctor-row", dataset: { doctorId: String(d.id), state: d.state } },
      el("span", { className: "doctor-name", text: d.name }),
      el("span", { className: `badge doctor-${d.state}`, text: d.state }),
      el("span", {
        className: "muted small",
        text: `${d.consultations}/${d.capacity} · ${d.forms.join(", ")}`,
      }),
      away,
    );
  });
  return el(
    "div",
    { className: "doctors" },
    el("h3", { text: "Doctors" }),
    el("ul", { className: "doctor-list" }, ...items),
  );
}

/** The last hour: bars for the most waiting at once in each bucket, a line for the count at
 * each bucket's end. */
function historyChart(history, name) {
  const width = 240;
  const height = 64;
  const top = 6;
  const bottom = 14;
  const plot = height - top - bottom;
  const max = Math.max(1, ...history.map((p) => p.peak));
  const step = width / Math.max(1, history.length);
  const y = (value) => top + plot - (value / max) * plot;
  const svg = svgEl("svg", {
    class: "wait-chart",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "data-testid": "wait-chart",
  });
  const label = `${name}: patients waiting over the last hour, at most ${max} at once`;
  svg.setAttribute("aria-label", label);
  svg.append(svgEl("title", {}, label));
  svg.append(svgEl("line", { class: "axis", x1: 0, x2: width, y1: top + plot, y2: top + plot }));
  history.forEach((p, i) => {
    const bar = svgEl("rect", {
      class: "peak",
      x: i * step + 1,
      y: y(p.peak),
      width: step - 2,
      height: top + plot - y(p.peak),
    });
    bar.append(
      svgEl(
        "title",
        {},
        `${formatClock(p.start)}–${formatClock(p.end)}: ${p.peak} at most, ${p.waiting} at the end`,
      ),
    );
    svg.append(bar);
  });
  const points = history.map((p, i) => `${(i + 1) * step},${y(p.waiting)}`).join(" ");
  svg.append(
    svgEl("polyline", {
      class: "at-end",
      points: `0,${y(history.length ? history[0].waiting : 0)} ${points}`,
    }),
  );
  svg.append(svgEl("text", { class: "tick", x: 0, y: height - 2 }, "−60 min"));
  svg.append(
    svgEl("text", { class: "tick", x: width, y: height - 2, "text-anchor": "end" }, "now"),
  );
  svg.append(svgEl("text", { class: "tick", x: 0, y: top + 2 }, `max ${max}`));
  return svg;
}

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// --- actions -------------------------------------------------------------------------------

async function act(button, path, body, describe) {
  await guarded(errors, button, async () => {
    const out = await api("POST", path, body);
    showNotice(describe(out));
    // The push follows; fetch at once as well so the page does not wait for it.
    await refresh();
  });
}

function showNotice(text) {
  const node = $("#notice");
  node.textContent = text;
  show(node, Boolean(text));
}

// --- formatting ----------------------------------------------------------------------------

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

function formatClock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

startSession({ errors, enter, afterLogout });
