// Renewal requests on the scheduler page: every open request, with the doctor it waits for;
// a scheduler hands one to another doctor of the consultation's specialty. Schedulers get no
// renewal pushes, so the list is read again every 20 seconds and after each hand-over.

import { $, ErrorBanner, api, el, guarded, show } from "/static/api.js";

const REFRESH_MS = 20_000;
const errors = new ErrorBanner($("#renewals-error"));
const state = { doctors: [], timer: null };

export async function startRenewals() {
  await guarded(errors, null, async () => {
    state.doctors = (await api("GET", "/api/doctors")).doctors;
    await load();
  });
  state.timer = setInterval(() => load().catch((err) => errors.show(err)), REFRESH_MS);
}

export function resetRenewals() {
  clearInterval(state.timer);
  Object.assign(state, { doctors: [], timer: null });
  $("#renewals-rows").replaceChildren();
  errors.clear();
}

async function load() {
  const { renewals } = await api("GET", "/api/renewals?status=open");
  $("#renewals-rows").replaceChildren(...renewals.map(row));
  show($("#renewals-empty"), renewals.length === 0);
}

function row(renewal) {
  const p = renewal.prescription;
  const others = state.doctors.filter(
    (d) =>
      d.id !== renewal.doctor.id &&
      renewal.specialty &&
      d.specialties.some((s) => s.code === renewal.specialty.code),
  );
  const select = el("select", {
    "aria-label": `Doctor to hand request ${renewal.id} to`,
    dataset: { testid: "renewal-doctor" },
  });
  select.replaceChildren(...others.map((d) => el("option", { value: d.id, text: d.name })));
  const hand = el("button", {
    type: "button",
    className: "secondary",
    text: "Hand over",
    disabled: others.length === 0,
    dataset: { testid: "renewal-reassign" },
  });
  hand.addEventListener("click", () =>
    guarded(errors, hand, async () => {
      await api("POST", `/api/renewals/${renewal.id}/reassign`, {
        doctor_id: Number(select.value),
      });
      await load();
    }),
  );
  const asked = new Date(renewal.requested_at).toLocaleString();
  return el("tr", { dataset: { testid: "renewal-row", renewalId: renewal.id } }, [
    el("td", { text: asked }),
    el("td", { text: renewal.patient.name }),
    el("td", { text: `${p.product_name} ${p.strength}` }),
    el("td", { text: renewal.specialty ? renewal.specialty.name : "—" }),
    el("td", { text: renewal.doctor.name, dataset: { testid: "renewal-waiting-for" } }),
    el("td", {}, [select, hand]),
  ]);
}
