// The patient's "Prescriptions and documents": every package of e-prescriptions with its access
// code and key (what the pharmacy asks for), each prescription's status, referrals, sick leave,
// a PDF printout of each, "Ask for renewal" on the prescriptions that may be renewed, with
// the request's state, and "Book a visit" on the referrals that book one (referrals.js). Read
// again whenever the server says something changed (outcome:issued, outcome:cancelled,
// renewal:decided), after a reconnect, and after a booking is made or cancelled.

import { api, el, formatDateTime, show } from "/static/api.js";
import { downloadLink, renderPackage, renderReferral, renderSickLeave } from "/static/issued.js";
import { ReferralBooking } from "/patient/referrals.js";

export class MyIssued {
  /**
   * nodes: {list, empty}; onError(err): a failed read; bookings(): the patient's bookings as
   * last read; onBooked(booking): a referral booked a visit.
   */
  constructor({ nodes, onError, bookings, onBooked }) {
    Object.assign(this, { nodes, onError });
    this.referrals = new ReferralBooking({
      bookings,
      onBooked,
      render: () => this.render(),
      onStale: () => this.load().catch((err) => this.onError(err)),
    });
    this.issued = null;
    this.renewals = new Map(); // prescription id -> the latest renewal request for it
    this.generation = 0; // the latest load; an earlier one answering late is dropped
    this.asking = new Set(); // prescription ids whose request is on its way
    this.open = new Set(); // prescription ids whose "Ask for renewal" form is open
  }

  async load() {
    const generation = ++this.generation;
    const issued = await api("GET", "/api/patients/me/issued");
    if (generation !== this.generation) return;
    this.issued = issued;
    this.render(); // the documents first; the renewal requests' state follows
    // The requests' details (who, when, why declined, the new code) only when there are any.
    const asked = issued.packages.some((pkg) => pkg.prescriptions.some((p) => p.renewal_status));
    if (!asked) {
      this.renewals = new Map();
      this.render();
      return;
    }
    const [open, decided] = await Promise.all([
      api("GET", "/api/renewals?status=open"),
      api("GET", "/api/renewals?status=decided"),
    ]);
    if (generation !== this.generation) return;
    this.renewals = new Map();
    // Oldest first, so the newest request of each prescription is the one kept.
    const all = [...decided.renewals, ...open.renewals].sort((a, b) => a.id - b.id);
    for (const r of all) this.renewals.set(r.prescription.id, r);
    this.render();
  }

  clear() {
    this.generation += 1;
    this.issued = null;
    this.renewals.clear();
    this.open.clear();
    this.referrals.clear();
    this.nodes.list.replaceChildren();
  }

  /** The bookings were read: a used referral says when its visit is. Drawn again only then, so
   * a renewal note being typed is not lost to an unrelated booking. */
  bookingsRead() {
    if (this.issued && this.issued.referrals.some((r) => r.used_by_booking != null)) this.render();
  }

  render() {
    const issued = this.issued;
    if (!issued) return;
    const items = [
      ...issued.packages.map((pkg) =>
        renderPackage(pkg, {
          prescription: (p) => this._renewal(p),
          package: (x) =>
            downloadLink(`/api/packages/${x.id}/printout.pdf`, `e-prescription-${x.id}.pdf`, "package-pdf"),
        }),
      ),
      ...issued.referrals.map((r) =>
        renderReferral(r, {
          referral: (x) => [
            downloadLink(`/api/referrals/${x.id}/printout.pdf`, `referral-${x.id}.pdf`, "referral-pdf"),
            this.referrals.part(x),
          ],
        }),
      ),
      ...issued.sick_leaves.map((s) =>
        renderSickLeave(s, {
          sickLeave: (x) =>
            downloadLink(`/api/sick-leaves/${x.id}/printout.pdf`, `sick-leave-${x.id}.pdf`, "sick-leave-pdf"),
        }),
      ),
    ];
    show(this.nodes.empty, items.length === 0);
    this.nodes.list.replaceChildren(...items);
  }

  /** The renewal request of one prescription, and "Ask for renewal" when it may be asked. */
  _renewal(p) {
    const request = this.renewals.get(p.id);
    const state = request ? renewalState(request) : null;
    const waiting = request && request.status === "open";
    if (!p.renewable || waiting) return state;
    if (!this.open.has(p.id)) {
      const ask = el("button", {
        type: "button",
        className: "secondary",
        text: "Ask for renewal",
        "data-testid": "ask-renewal",
        on: {
          click: () => {
            this.open.add(p.id);
            this.render();
            document.getElementById(`renewal-note-${p.id}`)?.focus();
          },
        },
      });
      return el("div", { className: "renewal-ask" }, state, ask);
    }
    return el("div", { className: "renewal-ask" }, state, this._askForm(p));
  }

  _askForm(p) {
    const noteId = `renewal-note-${p.id}`;
    const note = el("textarea", { id: noteId, rows: 2, maxlength: 500, "data-testid": "renewal-note-input" });
    const error = el("p", { className: "notice error small", role: "alert", hidden: true });
    const send = el("button", {
      type: "submit",
      text: "Send the request",
      disabled: this.asking.has(p.id),
      "data-testid": "renewal-send",
    });
    return el(
      "form",
      {
        className: "renewal-form",
        on: {
          submit: async (event) => {
            event.preventDefault();
            if (this.asking.has(p.id)) return; // one request at a time (the server keeps one open)
            this.asking.add(p.id);
            send.disabled = true;
            show(error, false);
            try {
              const body = note.value.trim() ? { note: note.value.trim() } : {};
              const renewal = await api("POST", `/api/prescriptions/${p.id}/renewal`, body);
              this.renewals.set(p.id, renewal);
              this.open.delete(p.id);
              this.render();
            } catch (err) {
              error.textContent = err.message.charAt(0).toUpperCase() + err.message.slice(1);
              show(error);
              send.disabled = false;
            } finally {
              this.asking.delete(p.id);
            }
          },
        },
      },
      el("label", { for: noteId, text: "A note for the doctor (optional)" }),
      note,
      el("div", { className: "actions" }, send),
      error,
    );
  }
}

function renewalState(r) {
  let text;
  if (r.status === "open") {
    text = `Renewal asked for ${formatDateTime(r.requested_at)}: waiting for ${r.doctor.name}.`;
  } else if (r.status === "approved") {
    const code = r.package ? ` (the new package's access code is ${r.package.access_code})` : "";
    text = `Renewed by ${r.doctor.name} ${formatDateTime(r.decided_at)}${code}.`;
  } else {
    text = `Renewal declined by ${r.doctor.name}: ${r.decline_reason}`;
  }
  return el("p", {
    className: `renewal-state ${r.status}`,
    "data-testid": "renewal-state",
    "data-status": r.status,
    text,
  });
}
