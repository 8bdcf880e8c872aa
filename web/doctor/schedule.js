// The doctor's own schedule in the console, read-only: their weekly hours (which schedulers
// set), kept current by `schedule:changed`, and their next booked appointments.

import { api, el, show } from "/static/api.js";
import { WEEKDAYS, timeRange } from "/static/hours.js";
import { formatSlotTime, kindText } from "/static/slots.js";

/** "My weekly hours". nodes: {rows, table, empty, notice}. */
export class MyHours {
  constructor({ nodes }) {
    this.nodes = nodes;
    this.doctorId = null;
    this.loads = 0; // each load's number: an older answer arriving late is dropped
  }

  /** The hours of `doctorId` as the server has them now. */
  async load(doctorId = this.doctorId) {
    this.doctorId = doctorId;
    const mine = ++this.loads;
    const { hours } = await api("GET", `/api/doctors/${doctorId}/schedule`);
    if (mine !== this.loads || this.doctorId !== doctorId) return; // a newer load, or logged out
    this.render(hours);
  }

  /**
   * A scheduler added or removed hours of this doctor (`schedule:changed`): say what changed,
   * and read the list again (events from several server processes may arrive out of order; the
   * list read after the event is never older than the change).
   */
  async changed({ doctor_id: doctorId, change, hours }) {
    if (doctorId !== this.doctorId) return;
    const what = `${WEEKDAYS[hours.weekday]} ${timeRange(hours)} ${hours.timezone}`;
    const kind = `${hours.specialty.name}, ${kindText(hours.kind).toLowerCase()}`;
    this.notice(`A scheduler ${change} your hours on ${what} (${kind}).`);
    await this.load();
  }

  render(hours) {
    const { rows, table, empty } = this.nodes;
    rows.replaceChildren(...hours.map(row));
    show(table, hours.length > 0);
    show(empty, hours.length === 0);
  }

  notice(text) {
    this.nodes.notice.textContent = text;
    show(this.nodes.notice, Boolean(text));
  }

  clear() {
    this.doctorId = null;
    this.loads += 1;
    this.nodes.rows.replaceChildren();
    show(this.nodes.table, false);
    show(this.nodes.empty, false);
    this.notice("");
  }
}

function row(hours) {
  return el(
    "tr",
    { dataset: { testid: "my-hours-row", weekday: hours.weekday, id: hours.id } },
    el("th", { scope: "row", text: WEEKDAYS[hours.weekday] }),
    el("td", { text: timeRange(hours), dataset: { testid: "my-hours-time" } }),
    el("td", { text: hours.timezone }),
    el("td", { text: hours.specialty.name }),
    el("td", { text: kindText(hours.kind) }),
    el("td", { text: `${hours.slot_minutes} min` }),
  );
}

const APPOINTMENTS_SHOWN = 5;

/**
 * "Upcoming appointments": the next active bookings of the doctor's slots (`GET /api/bookings`
 * gives a doctor the bookings of their slots). There are no booking events: the list is read
 * at every (re)connect and on Refresh. nodes: {list, empty, more}.
 */
export class UpcomingAppointments {
  constructor({ nodes }) {
    this.nodes = nodes;
    this.loads = 0;
  }

  async load() {
    const mine = ++this.loads;
    const { bookings } = await api("GET", "/api/bookings");
    if (mine !== this.loads) return;
    const now = Date.now();
    const upcoming = bookings
      .filter((b) => b.status === "active" && Date.parse(b.slot.ends_at) > now)
      .sort((a, b) => Date.parse(a.slot.starts_at) - Date.parse(b.slot.starts_at));
    const { list, empty, more } = this.nodes;
    list.replaceChildren(...upcoming.slice(0, APPOINTMENTS_SHOWN).map(appointment));
    show(empty, upcoming.length === 0);
    const rest = upcoming.length - APPOINTMENTS_SHOWN;
    more.textContent = rest > 0 ? `and ${rest} more booked after these.` : "";
    show(more, rest > 0);
  }

  clear() {
    this.loads += 1;
    this.nodes.list.replaceChildren();
    show(this.nodes.empty, false);
    show(this.nodes.more, false);
  }
}

function appointment(booking) {
  const slot = booking.slot;
  return el(
    "li",
    { className: "booking", dataset: { testid: "appointment", bookingId: booking.id } },
    el(
      "div",
      { className: "booking-main" },
      el("span", { className: "slot-time", text: formatSlotTime(slot) }),
      el("span", { text: booking.patient.name, dataset: { testid: "appointment-patient" } }),
      el("span", { className: "slot-who", text: slot.specialty.name }),
    ),
    el("span", { className: `badge kind-${slot.kind}`, text: kindText(slot.kind) }),
  );
}
