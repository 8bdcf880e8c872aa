// The patient's bookings: "My bookings" (cancel, add to calendar) and "Book a visit" (free slots
// of a specialty, booked in one click).

import { $, api, el, formatDateTime, show } from "/static/api.js";
import {
  bookSlot,
  bookingErrorText,
  describeSlot,
  formatSlotTime,
  kindHint,
  kindText,
  slotGone,
  slotItem,
} from "/static/slots.js";

/** Active bookings a basic (unverified) account may hold; the server enforces it (429). */
const BASIC_BOOKING_LIMIT = 10;
const SLOTS_SHOWN = 10;

/**
 * "My bookings". onChanged(booking): after a cancellation (a slot is free again, and the
 * referral the booking used); onLoaded(): the bookings were read (a used referral says when its
 * visit is); onRender(bookings): after each redraw (the rating forms of past visits go back in).
 */
export class MyBookings {
  constructor({ errors, onChanged, onLoaded = () => {}, onRender = () => {} }) {
    this.me = null; // the logged-in patient, set on entering the page
    this.errors = errors;
    this.onChanged = onChanged;
    this.onLoaded = onLoaded;
    this.onRender = onRender;
    this.bookings = [];
    this.confirming = null; // the booking id whose cancellation is being confirmed
    $("#bookings-refresh").addEventListener("click", () => this.reload($("#bookings-refresh")));
  }

  async reload(button) {
    if (button) button.disabled = true;
    try {
      await this.load();
    } catch (err) {
      this.errors.show(err);
    } finally {
      if (button) button.disabled = false;
    }
  }

  async load() {
    const { bookings } = await api("GET", "/api/bookings");
    this.bookings = bookings;
    this.render();
    this.onLoaded();
  }

  clear() {
    this.bookings = [];
    this.confirming = null;
    $("#bookings").replaceChildren();
    $("#bookings-past ul").replaceChildren();
  }

  render() {
    if (!this.me) return; // logged out meanwhile
    const now = Date.now();
    const upcoming = this.bookings.filter(
      (b) => b.status === "active" && Date.parse(b.slot.starts_at) > now,
    );
    const others = this.bookings.filter((b) => !upcoming.includes(b)).reverse();
    $("#bookings").replaceChildren(...upcoming.map((b) => this.item(b, "upcoming")));
    show($("#bookings-empty"), upcoming.length === 0);
    const past = $("#bookings-past");
    past.querySelector("[data-role=count]").textContent = String(others.length);
    past.querySelector("ul").replaceChildren(
      ...others.map((b) => this.item(b, b.status === "cancelled" ? "cancelled" : "past")),
    );
    show(past, others.length > 0);
    this.onRender(this.bookings);

    const usage = $("#bookings-usage");
    if (this.me.identity !== "verified") {
      // The server counts active bookings whose visit has not ended.
      const held = this.bookings.filter(
        (b) => b.status === "active" && Date.parse(b.slot.ends_at) > now,
      ).length;
      usage.textContent =
        `Basic account: ${held} of ${BASIC_BOOKING_LIMIT} active bookings used. ` +
        "Confirm your identity for unlimited bookings.";
      usage.classList.toggle("at-limit", held >= BASIC_BOOKING_LIMIT);
      show(usage);
    } else {
      show(usage, false);
    }
  }

  item(booking, state) {
    const { slot } = booking;
    const badge = {
      upcoming: ["active", "Booked"],
      cancelled: ["cancelled", "Cancelled"],
      past: ["ended", booking.status === "active" ? "Past" : booking.status],
    }[state];
    const details = [`${slot.specialty.name} · ${slot.doctor.name} · `];
    const actions = el("div", { className: "actions" });
    if (state === "upcoming") {
      actions.append(
        el("a", {
          className: "button-link secondary",
          href: `/api/bookings/${booking.id}.ics`,
          download: `booking-${booking.id}.ics`,
          "data-testid": "booking-ics",
          text: "Add to calendar (.ics)",
        }),
      );
      if (this.confirming === booking.id) {
        actions.append(
          el("span", { className: "confirm-text", text: "Cancel this visit?" }),
          el("button", {
            type: "button",
            className: "danger",
            text: "Yes, cancel it",
            "data-testid": "confirm-cancel-booking",
            on: { click: (e) => this.cancel(booking, e.currentTarget) },
          }),
          el("button", {
            type: "button",
            className: "secondary",
            text: "Keep it",
            "data-testid": "keep-booking",
            on: { click: () => this.confirm(null) },
          }),
        );
      } else {
        actions.append(
          el("button", {
            type: "button",
            className: "danger",
            text: "Cancel visit",
            "data-testid": "cancel-booking",
            on: { click: () => this.confirm(booking.id) },
          }),
        );
      }
    }
    return el(
      "li",
      {
        className: `booking ${state}`,
        "data-testid": "booking",
        "data-booking-id": booking.id,
        "data-status": booking.status,
      },
      el(
        "div",
        { className: "booking-main" },
        el("time", {
          className: "slot-time",
          datetime: slot.starts_at,
          "data-testid": "booking-time",
          text: formatSlotTime(slot),
        }),
        el(
          "span",
          { className: "slot-who" },
          details,
          el("span", {
            className: `badge kind-${slot.kind}`,
            title: kindHint(slot.kind),
            text: kindText(slot.kind),
          }),
          " ",
          el("span", {
            className: `badge ${badge[0]}`,
            "data-testid": "booking-status",
            text: badge[1],
          }),
        ),
        booking.referral_id
          ? el("span", {
              className: "muted small",
              "data-testid": "booking-referral",
              text: "Booked with your referral",
            })
          : null,
        booking.cancelled_at
          ? el("span", {
              className: "muted small",
              text: `Cancelled ${formatDateTime(booking.cancelled_at)}`,
            })
          : null,
      ),
      actions,
    );
  }

  confirm(bookingId) {
    this.confirming = bookingId;
    this.render();
    const selector = bookingId === null ? null : `[data-booking-id="${bookingId}"] button.danger`;
    const target = selector && document.querySelector(selector);
    if (target) target.focus({ preventScroll: true });
  }

  async cancel(booking, button) {
    this.errors.clear();
    button.disabled = true;
    try {
      await api("POST", `/api/bookings/${booking.id}/cancel`, {});
    } catch (err) {
      button.disabled = false;
      this.errors.show(
        err.code === "slot_in_past"
          ? "This visit has already started: it can no longer be cancelled."
          : err,
      );
      if (err.code !== "slot_in_past" && err.code !== "booking_cancelled") return;
    }
    this.confirming = null;
    await this.reload();
    this.onChanged(booking);
  }
}

/** "Book a visit": choose a specialty (and kind), see the next free slots, book one. */
export class BookVisit {
  constructor({ onBooked }) {
    this.onBooked = onBooked;
    this.searched = false;
    this.form = $("#slots-form");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.search($("#find-slots"));
    });
    // Once slots are shown, a new choice shows the slots for it.
    for (const id of ["#book-specialty", "#book-kind"]) {
      $(id).addEventListener("change", () => {
        if (this.searched) this.search();
      });
    }
  }

  setSpecialties(specialties) {
    const select = $("#book-specialty");
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
    const usable = specialties.filter((s) => s.covered !== false);
    if (usable.some((s) => s.code === previous)) select.value = previous;
    else if (usable.length) select.value = usable[0].code;
  }

  clear() {
    this.searched = false;
    $("#slots").replaceChildren();
    this.setMessage("");
    this.setConfirmation(null);
    show($("#slots-empty"), false);
  }

  setMessage(text) {
    $("#book-error").textContent = text;
    show($("#book-error"), Boolean(text));
  }

  setConfirmation(booking) {
    const node = $("#book-confirmation");
    if (!booking) {
      node.replaceChildren();
      show(node, false);
      return;
    }
    node.replaceChildren(
      el("strong", { text: "Booked: " }),
      `${describeSlot(booking.slot)}. It is listed under `,
      el("a", { href: "#bookings-section", text: "My bookings" }),
      ".",
    );
    show(node);
  }

  /** Refreshes the slots shown, if any are. */
  async refresh() {
    if (this.searched) await this.search();
  }

  async search(button) {
    const specialty = $("#book-specialty").value;
    if (!specialty) return;
    const kind = $("#book-kind").value;
    const query = new URLSearchParams({ specialty, limit: String(SLOTS_SHOWN) });
    if (kind) query.set("kind", kind);
    if (button) {
      button.disabled = true;
      this.setMessage("");
      this.setConfirmation(null);
    }
    try {
      const { slots } = await api("GET", `/api/slots?${query}`);
      // Answers to an older choice are dropped.
      if (specialty !== $("#book-specialty").value || kind !== $("#book-kind").value) return;
      this.searched = true;
      $("#slots").replaceChildren(...slots.map((s) => slotItem(s, (x, b) => this.book(x, b))));
      const empty = $("#slots-empty");
      empty.textContent = "No free slots in the next two weeks. Try another kind of visit.";
      show(empty, slots.length === 0);
    } catch (err) {
      this.setMessage(bookingErrorText(err));
    } finally {
      if (button) button.disabled = false;
    }
  }

  async book(slot, button) {
    this.setMessage("");
    this.setConfirmation(null);
    button.disabled = true;
    let booking;
    try {
      booking = await bookSlot(slot.id);
    } catch (err) {
      button.disabled = false;
      this.setMessage(bookingErrorText(err));
      if (slotGone(err)) await this.refresh();
      return;
    }
    this.setConfirmation(booking);
    button.closest("li").remove();
    this.onBooked(booking);
  }
}
