// What "Issue and end" issued, on the consultation card: the package, referrals and sick leave,
// each with a Cancel that asks for the reason first. The issuing doctor may cancel; the
// document stays in the patient's record as cancelled (the patient is told live).

import { api, el, show } from "/static/api.js";
import { renderPackage, renderReferral, renderSickLeave } from "/static/issued.js";

const ROUTES = {
  prescription: (id) => `/api/prescriptions/${id}/cancel`,
  referral: (id) => `/api/referrals/${id}/cancel`,
  sick_leave: (id) => `/api/sick-leaves/${id}/cancel`,
};

export class IssuedView {
  constructor({ onError }) {
    this.onError = onError;
    this.outcome = null;
    this.warnings = el("p", { className: "notice small", "data-testid": "issued-warnings", hidden: true });
    this.body = el("div", { className: "issued-list" });
    this.element = el(
      "section",
      { className: "outcome-issued", "data-testid": "outcome-issued", hidden: true },
      el("h5", { text: "Issued" }),
      this.warnings,
      this.body,
    );
  }

  show(outcome) {
    this.outcome = outcome;
    if (outcome.warnings && outcome.warnings.length) {
      this.warnings.textContent = `Note: ${outcome.warnings.join("; ")}.`;
      show(this.warnings);
    }
    this.render();
    show(this.element);
  }

  /** A document cancelled (here, in another tab, or pushed as outcome:cancelled). */
  cancelled(kind, doc) {
    const o = this.outcome;
    if (!o || doc.consultation_id !== o.consultation_id) return;
    if (kind === "prescription") o.packages = o.packages.map((p) => (p.id === doc.id ? doc : p));
    if (kind === "referral") o.referrals = o.referrals.map((r) => (r.id === doc.id ? doc : r));
    if (kind === "sick_leave") o.sick_leave = doc;
    this.render();
  }

  render() {
    const o = this.outcome;
    const items = [
      ...o.packages.map((pkg) =>
        renderPackage(pkg, {
          prescription: (p) => (p.status === "cancelled" ? null : this.cancelForm("prescription", p)),
        }),
      ),
      ...o.referrals.map((r) =>
        renderReferral(r, { referral: (x) => (x.cancelled_at ? null : this.cancelForm("referral", x)) }),
      ),
      o.sick_leave
        ? renderSickLeave(o.sick_leave, {
            sickLeave: (s) => (s.cancelled_at ? null : this.cancelForm("sick_leave", s)),
          })
        : null,
    ].filter(Boolean);
    if (o.recommendation) {
      items.unshift(
        el("p", { className: "body", "data-testid": "issued-recommendation", text: o.recommendation }),
      );
    }
    if (!items.length) items.push(el("p", { className: "muted", text: "Nothing but the end." }));
    this.body.replaceChildren(...items);
  }

  /** "Cancel…" opens a reason field; the request goes only with a reason. */
  cancelForm(kind, doc) {
    const reason = el("input", {
      type: "text",
      maxlength: 500,
      "aria-label": "Reason for cancelling",
      placeholder: "Reason for cancelling",
      "data-testid": "cancel-reason",
    });
    const confirm = el("button", { type: "submit", className: "danger", text: "Cancel it", "data-testid": "cancel-confirm" });
    const form = el(
      "form",
      {
        className: "cancel-form",
        hidden: true,
        on: {
          submit: async (event) => {
            event.preventDefault();
            if (!reason.value.trim()) {
              this.onError("Write why it is cancelled.");
              reason.focus();
              return;
            }
            confirm.disabled = true;
            try {
              const done = await api("POST", ROUTES[kind](doc.id), { reason: reason.value.trim() });
              this.cancelled(kind, done);
            } catch (err) {
              this.onError(err);
            } finally {
              confirm.disabled = false;
            }
          },
        },
      },
      reason,
      confirm,
    );
    const open = el("button", {
      type: "button",
      className: "link",
      text: "Cancel…",
      "data-testid": "cancel-document",
      on: {
        click: () => {
          open.hidden = true;
          form.hidden = false;
          reason.focus();
        },
      },
    });
    return el("div", { className: "cancel" }, open, form);
  }
}
