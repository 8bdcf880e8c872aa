// The doctor's Renewals inbox: patients asking to renew a prescription, oldest first. Approve
// issues a new package (optionally with another dosage); Decline needs a reason. Live: a new
// request (renewal:requested), one a scheduler hands to or from this doctor (renewal:reassigned),
// one decided in another tab (renewal:decided).

import { api, el, formatDateTime, show } from "/static/api.js";
import { formatDay, prescriptionStatus, productText } from "/static/issued.js";

export class RenewalInbox {
  constructor({ list, empty, notice, onError }) {
    Object.assign(this, { list, empty, notice, onError });
    this.open = new Map(); // renewal id -> RenewalOut
    this.typed = new Map(); // renewal id -> {dosage, reason}: kept across renders
    this.busy = new Set(); // renewal ids with a decision on its way
  }

  async load() {
    const { renewals } = await api("GET", "/api/renewals?status=open");
    this.open = new Map(renewals.map((r) => [r.id, r]));
    this.render();
  }

  clear() {
    this.open.clear();
    this.typed.clear();
    this.list.replaceChildren();
    show(this.notice, false);
  }

  requested(renewal) {
    if (renewal.status !== "open") return;
    this.open.set(renewal.id, renewal);
    this.render();
  }

  /** Handed to another doctor (out of this inbox) or to this one (into it). */
  reassigned(renewal, me) {
    if (renewal.doctor.id === me && renewal.status === "open") this.open.set(renewal.id, renewal);
    else this.open.delete(renewal.id);
    this.render();
  }

  decided(renewal) {
    this.typed.delete(renewal.id);
    if (this.open.delete(renewal.id)) this.render();
  }

  async _decide(renewal, action, body, button) {
    if (this.busy.has(renewal.id)) return;
    this.busy.add(renewal.id);
    button.disabled = true;
    try {
      const done = await api("POST", `/api/renewals/${renewal.id}/${action}`, body);
      this.decided(done);
      this.notice.textContent =
        action === "approve" && done.package
          ? `Renewed for ${done.patient.name}: new package, access code ${done.package.access_code}.`
          : `Declined for ${done.patient.name}.`;
      show(this.notice);
    } catch (err) {
      // Decided meanwhile (another tab) or handed to another doctor: out of this inbox.
      if (err.status === 404 || err.status === 409) this.load().catch(() => {});
      this.onError(err);
    } finally {
      this.busy.delete(renewal.id);
      button.disabled = false;
    }
  }

  render() {
    const items = [...this.open.values()].sort((a, b) => a.id - b.id);
    show(this.empty, items.length === 0);
    this.list.replaceChildren(...items.map((r) => this._item(r)));
  }

  _item(r) {
    const p = r.prescription;
    const typed = this.typed.get(r.id) || { dosage: p.dosage_instruction, reason: "" };
    this.typed.set(r.id, typed);
    const dosageId = `renewal-dosage-${r.id}`;
    const reasonId = `renewal-reason-${r.id}`;
    const dosage = el("input", {
      id: dosageId,
      type: "text",
      maxlength: 500,
      "data-testid": "renewal-dosage",
      on: { input: () => (typed.dosage = dosage.value) },
    });
    dosage.value = typed.dosage;
    const reason = el("input", {
      id: reasonId,
      type: "text",
      maxlength: 500,
      "data-testid": "renewal-decline-reason",
      on: { input: () => (typed.reason = reason.value) },
    });
    reason.value = typed.reason;
    const approve = el("button", { type: "button", text: "Approve", "data-testid": "renewal-approve" });
    approve.addEventListener("click", () => {
      const text = dosage.value.trim();
      if (!text) {
        this.onError("Write the dosage (or keep the original).");
        return;
      }
      const body = text === p.dosage_instruction ? {} : { dosage_instruction: text };
      this._decide(r, "approve", body, approve);
    });
    const decline = el("button", { type: "button", className: "danger", text: "Decline", "data-testid": "renewal-decline" });
    decline.addEventListener("click", () => {
      if (!reason.value.trim()) {
        this.onError("Write why the renewal is declined.");
        reason.focus();
        return;
      }
      this._decide(r, "decline", { reason: reason.value.trim() }, decline);
    });
    return el(
      "li",
      { className: "renewal", "data-testid": "renewal", "data-renewal-id": r.id },
      el("p", {
        className: "muted small",
        text: [r.patient.name, r.specialty && r.specialty.name, `asked ${formatDateTime(r.requested_at)}`]
          .filter(Boolean)
          .join(" · "),
      }),
      el("p", { className: "product", "data-testid": "renewal-product", text: productText(p) }),
      el("p", {
        className: "small",
        text:
          `${p.packs} × pack of ${p.pack_size} · issued ${formatDay(p.issued_on)} · ` +
          prescriptionStatus(p),
      }),
      r.note ? el("p", { className: "question", "data-testid": "renewal-note", text: r.note }) : null,
      el("label", { for: dosageId, text: "Dosage on the renewal" }),
      dosage,
      el("div", { className: "actions" }, approve),
      el("label", { for: reasonId, text: "Or decline, saying why" }),
      reason,
      el("div", { className: "actions" }, decline),
      busyState(this.busy.has(r.id), approve, decline),
    );
  }
}

function busyState(busy, ...buttons) {
  for (const button of buttons) button.disabled = busy;
  return null;
}
