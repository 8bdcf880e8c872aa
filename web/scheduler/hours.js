// Doctors' weekly hours on the scheduler page: pick a doctor, see their hours, add and remove
// them. The server generates the new hours' slots, and removes the free ones of removed hours.

import { $, ErrorBanner, api, el, guarded, show, userError } from "/static/api.js";
import { WEEKDAYS, timeRange } from "/static/hours.js";

const KINDS = { stationary: "At the clinic", phone: "Phone", online: "Online" };
// What the clinic's hours default to when the doctor has none yet: the browser's zone.
const BROWSER_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

const errors = new ErrorBanner($("#hours-error"));
const state = { doctors: [], doctorId: null };

export async function startHours() {
  await guarded(errors, null, async () => {
    state.doctors = (await api("GET", "/api/doctors")).doctors;
    const select = $("#hours-doctor");
    select.replaceChildren(
      ...state.doctors.map((d) => el("option", { value: d.id, text: d.name })),
    );
    if (state.doctors.length) await choose(state.doctors[0].id);
  });
}

export function resetHours() {
  Object.assign(state, { doctors: [], doctorId: null });
  $("#hours-doctor").replaceChildren();
  $("#hours-rows").replaceChildren();
  notice("");
  errors.clear();
}

async function choose(doctorId) {
  state.doctorId = Number(doctorId);
  $("#hours-doctor").value = String(doctorId);
  const doctor = state.doctors.find((d) => d.id === state.doctorId);
  $("#hours-specialty").replaceChildren(
    ...(doctor ? doctor.specialties : []).map((s) => el("option", { value: s.code, text: s.name })),
  );
  await load();
}

async function load() {
  const { hours } = await api("GET", `/api/doctors/${state.doctorId}/schedule`);
  $("#hours-rows").replaceChildren(...hours.map(row));
  show($("#hours-empty"), hours.length === 0);
  $("#hours-timezone").value = hours.length ? hours[0].timezone : BROWSER_ZONE;
}

function row(hours) {
  const remove = el("button", {
    type: "button",
    className: "secondary",
    text: "Remove",
    "aria-label": `Remove ${describe(hours)}`,
    dataset: { testid: "hours-remove" },
  });
  remove.addEventListener("click", () =>
    guarded(errors, remove, async () => {
      const out = await api("DELETE", `/api/doctors/${state.doctorId}/schedule/${hours.id}`);
      const kept = out.slots_kept
        ? `; ${plural(out.slots_kept, "booked slot")} kept (the bookings stand)`
        : "";
      notice(`Removed ${describe(hours)}: ${plural(out.slots_removed, "free slot")} removed${kept}.`);
      await load();
    }),
  );
  return el(
    "tr",
    { dataset: { testid: "hours-row", weekday: hours.weekday, id: hours.id } },
    el("td", { text: WEEKDAYS[hours.weekday] }),
    el("td", { text: timeRange(hours) }),
    el("td", { text: hours.specialty.name }),
    el("td", { text: KINDS[hours.kind] || hours.kind }),
    el("td", { text: `${hours.slot_minutes} min` }),
    el("td", { text: hours.timezone, className: "muted" }),
    el("td", {}, remove),
  );
}

async function add(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button[type=submit]");
  await guarded(errors, button, async () => {
    const data = new FormData(form);
    const start = minutes(data.get("start"));
    let end = minutes(data.get("end"));
    if (start === null || end === null) throw userError("Enter the start and end times.");
    if (end === 0) end = 24 * 60; // 00:00 as the end: midnight at the end of the day
    const body = {
      specialty: data.get("specialty"),
      kind: data.get("kind"),
      weekday: Number(data.get("weekday")),
      start_minute: start,
      end_minute: end,
      slot_minutes: Number(data.get("slot_minutes")),
      timezone: String(data.get("timezone") || "").trim() || BROWSER_ZONE,
    };
    const out = await api("POST", `/api/doctors/${state.doctorId}/schedule`, body);
    notice(`Added ${describe(out.hours)}: ${plural(out.slots_created, "slot")} open for booking.`);
    await load();
  });
}

function describe(hours) {
  return (
    `${WEEKDAYS[hours.weekday]} ${timeRange(hours)} ` +
    `(${hours.specialty.name}, ${(KINDS[hours.kind] || hours.kind).toLowerCase()})`
  );
}

function notice(text) {
  const node = $("#hours-notice");
  node.textContent = text;
  show(node, Boolean(text));
}

function minutes(value) {
  const match = /^(\d{1,2}):(\d{2})$/.exec(String(value || ""));
  return match ? Number(match[1]) * 60 + Number(match[2]) : null;
}

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

$("#hours-doctor").addEventListener("change", (event) =>
  guarded(errors, null, () => choose(event.target.value)),
);
$("#hours-form").addEventListener("submit", add);
