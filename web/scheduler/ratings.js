// The ratings on the scheduler page: count, average and the spread of scores (1-5) of each
// kind over the last 30 days, overall, per specialty and per doctor. Read at each (re)connect,
// then kept current by the server's ratings:summary pushes (a rating given or changed).

import { $, ErrorBanner, api, el, show } from "/static/api.js";

const KINDS = ["consultation", "booking", "service"];
const errors = new ErrorBanner($("#ratings-error"));

export function startRatings(socket) {
  socket.on("connect", () => load().catch((err) => errors.show(err)));
  socket.on("ratings:summary", (summary) => render(summary));
}

export function resetRatings() {
  $("#ratings-specialties").replaceChildren();
  $("#ratings-doctors").replaceChildren();
  errors.clear();
}

async function load() {
  render(await api("GET", "/api/scheduler/ratings"));
}

function render(summary) {
  $("#ratings-days").textContent = String(summary.days);
  $("#ratings-specialties").replaceChildren(
    row("All specialties", summary.overall, { testid: "ratings-overall" }),
    ...summary.specialties.map((s) =>
      row(s.specialty.name, s.figures, {
        testid: "ratings-specialty",
        specialty: s.specialty.code,
      }),
    ),
  );
  $("#ratings-doctors").replaceChildren(
    ...summary.doctors.map((d) =>
      row(d.doctor.name, d.figures, { testid: "ratings-doctor", doctorId: d.doctor.id }),
    ),
  );
  show($("#ratings-empty"), summary.specialties.length === 0);
}

function row(name, figures, { testid, ...data }) {
  return el(
    "tr",
    { "data-testid": testid, dataset: data },
    el("th", { scope: "row", text: name }),
    KINDS.map((kind) => cell(kind, figures[kind])),
  );
}

/** "4.50 (12)" and the spread of the scores under it, as small bars (counts in the title). */
function cell(kind, f) {
  const most = Math.max(1, ...f.distribution);
  const spread = f.distribution.map((n, i) => {
    const bar = el("span", { className: "bar", title: `${i + 1}: ${n}` });
    bar.style.height = `${Math.round((n / most) * 100)}%`; // CSSOM: the CSP refuses style=""
    return bar;
  });
  return el(
    "td",
    { dataset: { kind } },
    el("span", {
      className: "rating-average",
      "data-testid": "rating-average",
      text: f.average === null ? "—" : f.average.toFixed(2),
    }),
    el("span", { className: "muted", "data-testid": "rating-count", text: ` (${f.count})` }),
    el(
      "span",
      {
        className: "rating-spread",
        "data-testid": "rating-distribution",
        "aria-label": `scores 1 to 5: ${f.distribution.join(", ")}`,
        dataset: { distribution: f.distribution.join(",") },
      },
      spread,
    ),
  );
}
