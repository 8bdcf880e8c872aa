// Ratings on the patient's page: under each finished consultation in the record (the
// consultation and the service), and under each past booked visit (the booking and the
// service). 1-5 and an optional comment; saved with PUT, so saving again changes the rating,
// for 7 days after it was first given. The record and the bookings redraw themselves often
// (pushes, "Show older"): the forms are kept per visit and put back, so what was being typed
// survives a redraw.

import { api, el, formatDateTime } from "/static/api.js";

const KIND_TEXT = {
  consultation: "How was the consultation?",
  booking: "How was booking this visit?",
  service: "How was our service as a whole?",
};
const PATHS = {
  consultation: { consultation: "rating", service: "service-rating" },
  booking: { booking: "rating", service: "service-rating" },
};
const REFUSALS = {
  rating_locked: "This rating is final: a rating can be changed for 7 days after it is given.",
  visit_not_over: "This visit has not taken place yet: rate it once it is over.",
  booking_cancelled: "A cancelled visit is not rated.",
  consultation_not_finished: "The consultation is rated once it has ended.",
};

const key = (target, id, kind) => `${target}:${id}:${kind}`;

export class RatingForms {
  constructor() {
    this.ratings = new Map(); // key -> RatingOut
    this.forms = new Map(); // key -> the form's node, kept across redraws
  }

  async load() {
    const { ratings } = await api("GET", "/api/patients/me/ratings");
    this.ratings = new Map(
      ratings.map((r) => [
        r.consultation_id !== null
          ? key("consultation", r.consultation_id, r.kind)
          : key("booking", r.booking_id, r.kind),
        r,
      ]),
    );
    for (const [k, form] of this.forms) this.fill(form, this.ratings.get(k));
  }

  clear() {
    this.ratings.clear();
    this.forms.clear();
  }

  /** After the record is drawn: forms under its finished consultations. */
  decorateRecord(container, entries) {
    for (const { consultation: c } of entries) {
      if (c.status !== "ended" || !c.doctor) continue;
      const article = container.querySelector(`[data-consultation-id="${c.id}"]`);
      if (article) article.append(this.block("consultation", c.id));
    }
  }

  /** After the bookings are drawn: forms under the visits that are over (not cancelled). */
  decorateBookings(container, bookings) {
    const now = Date.now();
    for (const b of bookings) {
      if (b.status !== "active" || Date.parse(b.slot.ends_at) > now) continue;
      const main = container.querySelector(`[data-booking-id="${b.id}"] .booking-main`);
      if (main) main.append(this.block("booking", b.id));
    }
  }

  block(target, id) {
    const kinds = Object.keys(PATHS[target]);
    return el(
      "details",
      {
        className: "rating-block",
        "data-testid": "rating-block",
        dataset: { target, targetId: id },
        open: kinds.some((kind) => !this.ratings.has(key(target, id, kind))),
      },
      el("summary", { text: "Rate this visit" }),
      kinds.map((kind) => this.form(target, id, kind)),
    );
  }

  form(target, id, kind) {
    const k = key(target, id, kind);
    let form = this.forms.get(k);
    if (form) return form;
    const name = `score-${k.replaceAll(":", "-")}`;
    const scores = [1, 2, 3, 4, 5].map((n) =>
      el(
        "label",
        { className: "rating-score" },
        el("input", {
          type: "radio",
          name,
          value: String(n),
          required: true,
          "aria-label": `${n} of 5`,
          "data-testid": "rating-score",
        }),
        ` ${n}`,
      ),
    );
    const comment = el("textarea", {
      name: "comment",
      rows: 2,
      maxLength: 1000,
      placeholder: "A comment (optional)",
      "aria-label": `Comment: ${KIND_TEXT[kind]}`,
      "data-testid": "rating-comment",
    });
    const save = el("button", { type: "submit", text: "Rate", "data-testid": "rating-save" });
    const status = el("p", {
      className: "muted small",
      role: "status",
      "data-testid": "rating-status",
    });
    form = el(
      "form",
      { className: "rating-form", "data-testid": "rating-form", dataset: { kind } },
      el(
        "fieldset",
        {},
        el("legend", { text: KIND_TEXT[kind] }),
        el(
          "div",
          { className: "rating-scores" },
          scores,
          el("span", { className: "muted small", text: "(1 poor, 5 excellent)" }),
        ),
        comment,
        el("div", { className: "actions" }, save),
        status,
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit(form, target, id, kind);
    });
    this.forms.set(k, form);
    this.fill(form, this.ratings.get(k));
    return form;
  }

  /** Show the stored rating (or none) in its form. */
  fill(form, rating) {
    const status = form.querySelector("[data-testid=rating-status]");
    const save = form.querySelector("[data-testid=rating-save]");
    status.classList.remove("error");
    if (!rating) {
      status.textContent = "";
      return;
    }
    for (const radio of form.querySelectorAll("input[type=radio]")) {
      radio.checked = Number(radio.value) === rating.score;
    }
    form.querySelector("textarea").value = rating.comment;
    const final = Date.parse(rating.changeable_until) <= Date.now();
    for (const input of form.querySelectorAll("input, textarea, button")) input.disabled = final;
    save.textContent = "Change";
    form.dataset.score = String(rating.score);
    const until = formatDateTime(rating.changeable_until);
    status.textContent = final
      ? `You rated it ${rating.score} of 5. This rating is final.`
      : `You rated it ${rating.score} of 5. You can change it until ${until}.`;
  }

  async submit(form, target, id, kind) {
    const save = form.querySelector("[data-testid=rating-save]");
    const status = form.querySelector("[data-testid=rating-status]");
    const chosen = form.querySelector("input[type=radio]:checked");
    if (!chosen) return; // the browser asks for a score first (required)
    save.disabled = true;
    try {
      const collection = target === "consultation" ? "consultations" : "bookings";
      const path = `/api/${collection}/${id}/${PATHS[target][kind]}`;
      const rating = await api("PUT", path, {
        score: Number(chosen.value),
        comment: form.querySelector("textarea").value,
      });
      this.ratings.set(key(target, id, kind), rating);
      this.fill(form, rating);
    } catch (err) {
      status.textContent = REFUSALS[err.code] || err.message;
      status.classList.add("error");
    } finally {
      if (!form.querySelector("textarea").disabled) save.disabled = false;
    }
  }
}
