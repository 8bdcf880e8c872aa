// "My ratings" in the doctor console: the averages patients gave this doctor's visits over the
// last 30 days (consultations, the booking of booked visits, the service), and their comments,
// which name no patient. Read on entering the console and with Refresh.

import { $, api, el, show } from "/static/api.js";

const KIND_TEXT = { consultation: "Consultations", booking: "Booking", service: "Service" };

export class MyRatings {
  async load() {
    const own = await api("GET", "/api/doctors/me/ratings");
    $("#my-ratings-figures").replaceChildren(
      ...Object.entries(KIND_TEXT).map(([kind, label]) => figure(kind, label, own.figures[kind])),
    );
    $("#my-ratings-comments").replaceChildren(...own.comments.map(comment));
    show($("#my-ratings-no-comments"), own.comments.length === 0);
  }

  clear() {
    $("#my-ratings-figures").replaceChildren();
    $("#my-ratings-comments").replaceChildren();
  }
}

function figure(kind, label, f) {
  return el(
    "li",
    { "data-testid": "my-rating", dataset: { kind } },
    el("span", { className: "muted", text: `${label}: ` }),
    el("span", {
      className: "rating-average",
      "data-testid": "rating-average",
      text: f.average === null ? "no ratings" : `${f.average.toFixed(2)} of 5`,
    }),
    el("span", { className: "muted small", text: ` (${f.count})` }),
  );
}

function comment(c) {
  return el(
    "li",
    { "data-testid": "my-rating-comment", dataset: { kind: c.kind } },
    el("span", {
      className: "muted small",
      text: `${c.rated_on} · ${KIND_TEXT[c.kind]} · ${c.specialty.name} · ${c.score} of 5`,
    }),
    el("p", { className: "comment", text: c.comment }),
  );
}
