// Identity verification: the pending requests (read when the dashboard opens and with
// Refresh: each read is audited, as it shows patients' PESELs), each confirmed with what was
// checked or rejected with a reason.

import { $, ErrorBanner, api, el, formatDateTime, guarded, show, userError } from "/static/api.js";

const errors = new ErrorBanner($("#identity-error"));
let wired = false;

function row(request) {
  const note = el("input", {
    type: "text",
    "aria-label": `Document checked for ${request.name}`,
    placeholder: "e.g. ID card, number ending 4821",
    maxlength: "100",
    dataset: { testid: "identity-document" },
  });
  const decide = (verb) => async (event) =>
    guarded(errors, event.target, async () => {
      const text = note.value.trim();
      if (text.length < 3) {
        throw userError(
          verb === "confirm" ? "Note the document you checked." : "Give the patient a reason.",
        );
      }
      const body = verb === "confirm" ? { document: text } : { reason: text };
      await api("POST", `/api/identity/requests/${request.id}/${verb}`, body);
      await load();
    });
  return el(
    "tr",
    { dataset: { testid: "identity-request" } },
    el("td", { text: formatDateTime(request.requested_at) }),
    el("td", {}, request.name, el("br"), el("span", { className: "muted small", text: request.email })),
    el("td", { text: request.pesel }),
    el("td", { text: request.born }),
    el("td", {}, note),
    el(
      "td",
      {},
      el("button", { type: "button", text: "Confirm", dataset: { testid: "identity-confirm" }, on: { click: decide("confirm") } }),
      " ",
      el("button", { type: "button", className: "secondary", text: "Reject", dataset: { testid: "identity-reject" }, on: { click: decide("reject") } }),
    ),
  );
}

async function load() {
  const { requests } = await api("GET", "/api/identity/requests");
  $("#identity-rows").replaceChildren(...requests.map(row));
  show($("#identity-empty"), requests.length === 0);
}

export function startIdentity() {
  if (!wired) {
    wired = true;
    $("#identity-refresh").addEventListener("click", () => guarded(errors, $("#identity-refresh"), load));
  }
  guarded(errors, null, load);
}

export function resetIdentity() {
  $("#identity-rows").replaceChildren();
  errors.clear();
}
