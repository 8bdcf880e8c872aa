// "Book a visit" from a referral, in the patient's "Prescriptions and documents": the free slots
// the referral can book (GET /api/referrals/{id}/slots), each booked with the referral (POST
// /api/bookings with referral_id). A used referral says which booking uses it; cancelling that
// booking frees it, and the panel read again offers "Book a visit" once more.

import { api, el } from "/static/api.js";
import { bookSlot, bookingErrorText, formatSlotTime, slotGone, slotItem } from "/static/slots.js";

/** The kinds that book a visit here (the server's rule; their target names the specialty). */
const BOOKABLE_KINDS = new Set(["specialist_consultation", "rehabilitation"]);
const SLOTS_SHOWN = 10;
/** Refusals saying the referral itself changed meanwhile (another tab used it, the doctor
 * cancelled it): the panel is read again, so it shows how the referral stands. */
const STALE = new Set(["referral_used", "referral_cancelled", "referral_not_found"]);

/** Whether "Book a visit" is offered for a referral. */
export const canBook = (r) =>
  BOOKABLE_KINDS.has(r.kind) && !r.cancelled_at && r.used_by_booking == null;

export class ReferralBooking {
  /**
   * bookings(): the patient's bookings as last read (to say when a used referral's visit is);
   * render(): draws the documents panel again; onBooked(booking): a booking was made;
   * onStale(): the referrals changed on the server.
   */
  constructor({ bookings, render, onBooked, onStale }) {
    Object.assign(this, { bookings, render, onBooked, onStale });
    this.open = new Map(); // referral id -> {loading, slots, error, booking (a slot id on its way)}
    this.made = new Map(); // booking id -> a booking made here, until the bookings are read again
  }

  clear() {
    this.open.clear();
    this.made.clear();
  }

  /** What a referral's item gets: the booking that uses it, or "Book a visit" and its slots. */
  part(r) {
    if (r.used_by_booking != null) {
      this.open.delete(r.id);
      return this._used(r);
    }
    if (!canBook(r)) {
      this.open.delete(r.id);
      return null;
    }
    const state = this.open.get(r.id);
    if (state) return this._panel(r, state);
    return el("button", {
      type: "button",
      className: "secondary",
      text: "Book a visit",
      "data-testid": "referral-book",
      on: { click: () => this._show(r) },
    });
  }

  _used(r) {
    const booking =
      this.bookings().find((b) => b.id === r.used_by_booking) || this.made.get(r.used_by_booking);
    const when = booking ? ` on ${formatSlotTime(booking.slot)}` : "";
    return el(
      "p",
      {
        className: "referral-used small",
        "data-testid": "referral-used",
        "data-booking-id": r.used_by_booking,
      },
      `Used by your booking${when} (see `,
      el("a", { href: "#bookings-section", text: "My bookings" }),
      "). Cancelling that visit frees the referral again.",
    );
  }

  async _show(r) {
    const state = { loading: true, slots: null, error: "", booking: null };
    this.open.set(r.id, state);
    this.render();
    await this._loadSlots(r, state);
  }

  /** Reads the referral's free slots; a refusal is shown in the panel with its message. */
  async _loadSlots(r, state) {
    state.loading = true;
    try {
      const query = new URLSearchParams({ limit: String(SLOTS_SHOWN) });
      const { slots } = await api("GET", `/api/referrals/${r.id}/slots?${query}`);
      state.slots = slots;
    } catch (err) {
      state.slots = null;
      state.error = bookingErrorText(err);
      if (STALE.has(err.code)) this.onStale();
    } finally {
      state.loading = false;
    }
    if (this.open.get(r.id) === state) this.render();
  }

  async _book(r, state, slot) {
    if (state.booking !== null) return; // one at a time: the referral books one visit
    state.booking = slot.id;
    state.error = "";
    this.render();
    let booking;
    try {
      booking = await bookSlot(slot.id, r.id);
    } catch (err) {
      state.booking = null;
      state.error = bookingErrorText(err);
      this.render();
      if (slotGone(err)) await this._loadSlots(r, state);
      else if (STALE.has(err.code)) this.onStale();
      return;
    }
    // Used from now on; the panel and the bookings are read again by onBooked.
    this.open.delete(r.id);
    this.made.set(booking.id, booking);
    r.used_by_booking = booking.id;
    this.render();
    this.onBooked(booking);
  }

  _panel(r, state) {
    const close = el("button", {
      type: "button",
      className: "link",
      text: "Close",
      "data-testid": "referral-slots-close",
      on: {
        click: () => {
          this.open.delete(r.id);
          this.render();
        },
      },
    });
    const slots = state.slots || [];
    const list = el(
      "ul",
      { className: "slot-list", "data-testid": "referral-slots" },
      slots.map((s) => slotItem(s, (x) => this._book(r, state, x), { withReferral: true })),
    );
    if (state.booking !== null) {
      for (const button of list.querySelectorAll("button")) button.disabled = true;
    }
    return el(
      "div",
      { className: "referral-booking", "data-testid": "referral-booking" },
      el("div", { className: "card-head" }, el("h5", { text: "Free slots for this referral" }), close),
      state.loading && !state.slots
        ? el("p", { className: "muted small", text: "Looking for free slots…" })
        : null,
      state.error
        ? el("p", {
            className: "notice error small",
            role: "alert",
            "data-testid": "referral-book-error",
            text: state.error,
          })
        : null,
      state.slots && slots.length === 0
        ? el("p", {
            className: "muted",
            "data-testid": "referral-slots-empty",
            text: "No free slots for this referral in the next two weeks.",
          })
        : null,
      list,
    );
  }
}
