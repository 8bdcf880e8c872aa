// The patient's queue ticket, in words: place in line, the wait estimate as a range, the
// doctors of that queue, what happens next; and the alternative slots offered instead of waiting.

import { $, el, show } from "/static/api.js";
import { bookSlot, bookingErrorText, describeSlot, slotGone, slotItem } from "/static/slots.js";

const ORDINAL_SUFFIX = { one: "st", two: "nd", few: "rd", other: "th" };
const ordinalRules = new Intl.PluralRules("en", { type: "ordinal" });

/** 1 -> "1st", 2 -> "2nd", 3 -> "3rd", 11 -> "11th", 22 -> "22nd". */
export const ordinal = (n) => `${n}${ORDINAL_SUFFIX[ordinalRules.select(n)] || "th"}`;

/** "45 min", "1 h 30 min", "2 h". */
function duration(minutes) {
  if (minutes < 90) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

/** The place in line as a headline. */
export function placeText(ticket) {
  if (ticket.place === 0 || ticket.status === "offered") {
    return "A doctor is being asked to take you now";
  }
  return `You are ${ordinal(ticket.place)} in line`;
}

/** The wait estimate: a range, never a false precision. */
export function etaText(ticket) {
  if (ticket.place === 0 || ticket.status === "offered") return "you are being connected now";
  const eta = ticket.eta || {};
  const doctors = ticket.doctors || {};
  const low = eta.low_minutes;
  const high = eta.high_minutes;
  if (high === null || high === undefined) {
    if (low) return `more than ${duration(low)}`;
    if (!doctors.online) return "no doctor online";
    // Doctors are online but none can take this patient now (those online declined them).
    return eta.basis || "not known yet";
  }
  if (high <= 0) return "less than a minute";
  if (!low || low <= 0) return `up to ${duration(high)}`;
  if (low === high) return `about ${duration(low)}`;
  if (high < 90) return `about ${low}–${high} min`;
  return `about ${duration(low)} – ${duration(high)}`;
}

/** The doctors who take this queue: "2 online, 1 busy". */
export function doctorsText(ticket) {
  const d = ticket.doctors || {};
  const parts = [d.online ? `${d.online} online` : "none online"];
  if (d.online) parts.push(`${d.busy || 0} busy`);
  if (d.away) parts.push(`${d.away} away`);
  return parts.join(", ");
}

/** Fills the ticket panel (#ticket) from a ticket of the consultation, or hides it. */
export function renderTicket(consultation, ticket) {
  const node = $("#ticket");
  const queued = consultation && ["waiting", "offered"].includes(consultation.status);
  if (!queued || !ticket || ticket.consultation_id !== consultation.id) {
    show(node, false);
    return;
  }
  show(node);
  node.dataset.place = String(ticket.place);
  node.dataset.status = ticket.status;
  $("#ticket-place").textContent = placeText(ticket);
  // Being connected: the estimate and the queue no longer matter.
  const connecting = ticket.place === 0 || ticket.status === "offered";
  show($("#ticket-facts"), !connecting);
  $("#ticket-eta").textContent = etaText(ticket);
  $("#ticket-doctors").textContent = doctorsText(ticket);
  $("#ticket-waiting").textContent = String(ticket.waiting ?? "");
  // While being connected the headline says it all; otherwise, what happens next.
  $("#ticket-next").textContent = ticket.next || "";
  show($("#ticket-next"), Boolean(ticket.next) && !connecting);
}

/**
 * The alternatives offered with a ticket: each slot with a one-click "Book". After a booking,
 * a confirmation asks whether to leave the queue or keep waiting.
 *
 * onChanged(): after a booking is made (or the slots offered turned out out of date), to reload
 * the bookings and the ticket; it handles its own errors. onLeave(): the patient leaves the queue.
 */
export class Alternatives {
  constructor({ onChanged, onLeave }) {
    this.node = $("#alternatives");
    this.list = $("#alternative-slots");
    this.offer = $("#alternatives-offer");
    this.errorNode = $("#alternatives-error");
    this.booked = $("#alternative-booked");
    this.onChanged = onChanged;
    this.consultationId = null;
    this.slots = [];
    this.listKey = "";
    this.bookedFor = null; // the consultation id the confirmation belongs to
    $("#keep-waiting").addEventListener("click", () => {
      this.bookedFor = null;
      this.render();
    });
    $("#leave-after-booking").addEventListener("click", async () => {
      const button = $("#leave-after-booking");
      button.disabled = true;
      try {
        await onLeave();
      } finally {
        button.disabled = false;
      }
    });
  }

  /** The slots offered for a queued consultation ([] or null when none, or not queued). */
  update(consultation, slots) {
    const queued = consultation && ["waiting", "offered"].includes(consultation.status);
    const id = queued ? consultation.id : null;
    if (id !== this.consultationId) {
      this.consultationId = id;
      this.setError("");
    }
    if (this.bookedFor !== id) this.bookedFor = null;
    this.slots = id === null ? [] : slots || [];
    this.render();
  }

  render() {
    const confirming = this.bookedFor !== null && this.bookedFor === this.consultationId;
    show(this.node, this.consultationId !== null && (confirming || this.slots.length > 0));
    show(this.booked, confirming);
    show(this.offer, !confirming && this.slots.length > 0);
    // Rebuilt only when the offer changes, not on every move of the queue (keeps focus).
    const key = this.slots.map((slot) => slot.id).join(",");
    if (key !== this.listKey) {
      this.listKey = key;
      this.list.replaceChildren(
        ...this.slots.map((slot) => slotItem(slot, (s, b) => this.book(s, b))),
      );
    }
  }

  setError(text) {
    this.errorNode.textContent = text;
    show(this.errorNode, Boolean(text));
  }

  async book(slot, button) {
    const consultationId = this.consultationId;
    this.setError("");
    button.disabled = true;
    let booking;
    try {
      booking = await bookSlot(slot.id);
    } catch (err) {
      button.disabled = false;
      this.setError(bookingErrorText(err));
      if (slotGone(err)) this.onChanged(); // the offer is out of date: fetch it again
      return;
    }
    if (consultationId === this.consultationId) {
      this.bookedFor = consultationId;
      this.booked.querySelector("[data-role=what]").textContent = describeSlot(booking.slot);
      this.slots = this.slots.filter((s) => s.id !== slot.id);
      this.render();
      $("#keep-waiting").focus({ preventScroll: true });
    }
    this.onChanged();
  }
}
