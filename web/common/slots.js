// Bookable slots: how a slot reads for a person (date and time in their locale, doctor, kind of
// visit), one-click booking, and the server's refusals in plain words.

import { api, el } from "/static/api.js";

const KIND_TEXT = {
  stationary: "At the clinic",
  phone: "By phone",
  online: "Online",
};

const KIND_HINT = {
  stationary: "a visit in person at the clinic",
  phone: "the doctor phones you",
  online: "an online consultation at the set time",
};

/** "At the clinic", "By phone", "Online". */
export const kindText = (kind) => KIND_TEXT[kind] || kind;

/** What the kind of visit means, for a tooltip or a sentence. */
export const kindHint = (kind) => KIND_HINT[kind] || "";

const DAY_AND_TIME = {
  weekday: "short",
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
};

/** "Tue, 3 Dec, 08:00 – 08:20" in the reader's locale and time zone. */
export function formatSlotTime(slot) {
  const start = new Date(slot.starts_at);
  const end = new Date(slot.ends_at);
  const format = new Intl.DateTimeFormat([], DAY_AND_TIME);
  if (typeof format.formatRange === "function") return format.formatRange(start, end);
  const time = end.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return `${format.format(start)} – ${time}`;
}

/** One sentence naming a slot: "Tue, 3 Dec, 08:00 – 08:20 with Dr X (at the clinic)". */
export function describeSlot(slot) {
  return `${formatSlotTime(slot)} with ${slot.doctor.name} (${kindText(slot.kind).toLowerCase()})`;
}

/** Books a slot for the logged-in patient, with their referral when one is given; resolves to
 * the booking. */
export const bookSlot = (slotId, referralId = null) =>
  api(
    "POST",
    "/api/bookings",
    referralId === null ? { slot_id: slotId } : { slot_id: slotId, referral_id: referralId },
  );

const capitalised = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/** The server's refusal of a booking, said for the patient. */
export function bookingErrorText(err) {
  switch (err && err.code) {
    case "booking_limit": {
      const limit = (err.details && err.details.limit) || 10;
      return (
        `You already hold ${limit} active bookings, the most a basic account can hold. ` +
        "Cancel one of them, or confirm your identity for unlimited bookings."
      );
    }
    case "slot_taken":
      return "Someone else has just booked this slot. Please choose another one.";
    case "booking_overlap":
      return "You already have a visit booked at an overlapping time. Please choose another slot.";
    case "slot_in_past":
      return "This slot has already started. Please choose a later one.";
    case "slot_not_found":
      return "This slot is no longer offered. Please choose another one.";
    case "not_covered":
      return "Your plan does not cover this specialty, so this slot cannot be booked.";
    case "not_a_patient":
      return "Only patients can book visits.";
    case "referral_required":
      // The server's sentence names the specialty; where the patient's referrals are is ours.
      return (
        `${capitalised(err.message).replace(/\.?$/, ".")} If a doctor gave you a referral, ` +
        'use "Book a visit" on it under Prescriptions and documents.'
      );
    default:
      return capitalised(err instanceof Error ? err.message : String(err));
  }
}

/** Whether a refusal means the list of slots shown is out of date. */
export const slotGone = (err) =>
  Boolean(err) && ["slot_taken", "slot_in_past", "slot_not_found"].includes(err.code);

/**
 * A list item for one slot with a "Book" button. onBook(slot, button) is called on click;
 * a slot the patient's plan does not cover cannot be booked, and says so; a slot of a specialty
 * booked only with a referral says so too, unless it is listed from a referral (withReferral).
 */
export function slotItem(slot, onBook, { showSpecialty = false, withReferral = false } = {}) {
  const covered = slot.covered !== false;
  const button = el("button", {
    type: "button",
    text: "Book",
    disabled: !covered,
    "aria-label": `Book ${formatSlotTime(slot)} with ${slot.doctor.name}`,
    "data-testid": "book-slot",
  });
  button.addEventListener("click", () => onBook(slot, button));
  return el(
    "li",
    {
      className: "slot",
      "data-testid": "slot",
      "data-slot-id": slot.id,
      "data-kind": slot.kind,
    },
    el(
      "div",
      { className: "slot-main" },
      el("time", {
        className: "slot-time",
        datetime: slot.starts_at,
        "data-testid": "slot-time",
        text: formatSlotTime(slot),
      }),
      el(
        "span",
        { className: "slot-who" },
        showSpecialty ? `${slot.specialty.name} · ` : "",
        el("span", { "data-testid": "slot-doctor", text: slot.doctor.name }),
        " ",
        el("span", {
          className: `badge kind-${slot.kind}`,
          title: kindHint(slot.kind),
          "data-testid": "slot-kind",
          text: kindText(slot.kind),
        }),
      ),
      covered ? null : el("span", { className: "muted small", text: "Not covered by your plan" }),
      slot.referral_required && !withReferral
        ? el("span", {
            className: "muted small",
            "data-testid": "slot-needs-referral",
            text: "Needs a referral",
          })
        : null,
    ),
    button,
  );
}
