// What a visit's outcome issued, drawn the same way for the patient (their page) and the doctor
// (the consultation card after "Issue and end"): packages of e-prescriptions with their access
// code and key, each prescription with its status, referrals, sick leave. Each page adds its own
// actions (cancel; ask for renewal, download the printout) through the `extra` callbacks.

import { el, formatDateTime } from "/static/api.js";
import { fetchFile } from "/static/documents.js";

export const REFERRAL_KINDS = {
  specialist_consultation: "Specialist consultation",
  diagnostic_test: "Diagnostic test",
  hospital: "Hospital",
  rehabilitation: "Rehabilitation",
};
export const SICK_LEAVE_RECOMMENDATIONS = { 1: "must lie down", 2: "may walk" };

/** A calendar day from the API ("2025-03-07") in the reader's words; no time zone shift. */
export function formatDay(iso) {
  if (!iso) return "";
  const [year, month, day] = iso.split("-").map(Number);
  return new Date(year, month - 1, day).toLocaleDateString([], {
    year: "numeric",
    month: "short",
    day: "numeric",
  });
}

const days = (n) => (n === 1 ? "1 day" : `${n} days`);

/** The status of one prescription as the patient reads it. */
export function prescriptionStatus(p) {
  switch (p.status) {
    case "active":
      return `Active until ${formatDay(p.valid_until)}`;
    case "dispensable_from":
      return `Dispensable from ${formatDay(p.dispense_from)} to ${formatDay(p.valid_until)}`;
    case "expiring":
      return p.expires_in_days === 0 ? "Expires today" : `Expires in ${days(p.expires_in_days)}`;
    case "expired":
      return `Expired on ${formatDay(p.valid_until)}`;
    case "cancelled":
      return `Cancelled: ${p.cancel_reason}`;
    default:
      return p.status;
  }
}

export const productText = (p) => `${p.product_name} ${p.strength}, ${p.form}`;

/** The 44-digit key in groups of four, as it is read out or typed at a pharmacy. */
const groupedKey = (key) => key.replace(/(\d{4})(?=\d)/g, "$1 ");

function codeAndKey(doc, what) {
  return el(
    "dl",
    { className: "access" },
    el(
      "div",
      {},
      el("dt", { text: "Access code" }),
      el("dd", {
        className: "access-code",
        "data-testid": `${what}-access-code`,
        text: doc.access_code,
      }),
    ),
    el(
      "div",
      {},
      el("dt", { text: "Key" }),
      el("dd", {
        className: "access-key",
        "data-testid": `${what}-key`,
        "data-key": doc.key,
        text: groupedKey(doc.key),
      }),
    ),
  );
}

const cancelledNote = (doc) =>
  doc.cancelled_at
    ? el("p", {
        className: "notice error small",
        "data-testid": "cancelled-note",
        text: `Cancelled ${formatDateTime(doc.cancelled_at)}: ${doc.cancel_reason}`,
      })
    : null;

const issuer = (doc) => `${doc.doctor.name} (licence ${doc.doctor.licence_number || "—"})`;

/** extra: {prescription(p), package(pkg)} -> nodes added to each item. */
export function renderPackage(pkg, extra = {}) {
  const title = pkg.renewal_of ? "E-prescriptions (renewal)" : "E-prescriptions";
  return el(
    "article",
    {
      className: "issued package",
      "data-testid": "issued-package",
      "data-package-id": pkg.id,
      "data-renewal-of": pkg.renewal_of, // the renewed prescription's id, on a renewal's package
    },
    el("h4", { text: title }),
    el("p", {
      className: "muted small",
      text: `Issued ${formatDateTime(pkg.issued_at)} by ${issuer(pkg)}`,
    }),
    codeAndKey(pkg, "package"),
    el(
      "ul",
      { className: "prescriptions" },
      pkg.prescriptions.map((p) =>
        el(
          "li",
          {
            className: "prescription",
            "data-testid": "issued-prescription",
            "data-prescription-id": p.id,
            "data-status": p.status,
          },
          el("p", { className: "product", text: productText(p) }),
          el("p", {
            className: "small",
            text:
              `${p.packs} × pack of ${p.pack_size} · ${p.dosage_instruction} · ` +
              `payment ${p.payment_level}`,
          }),
          el("p", {
            className: `prescription-status ${p.status}`,
            "data-testid": "prescription-status",
            text: prescriptionStatus(p),
          }),
          extra.prescription ? extra.prescription(p) : null,
        ),
      ),
    ),
    extra.package ? extra.package(pkg) : null,
  );
}

export function renderReferral(r, extra = {}) {
  return el(
    "article",
    { className: "issued referral", "data-testid": "issued-referral", "data-referral-id": r.id },
    el("h4", { text: `Referral: ${REFERRAL_KINDS[r.kind] || r.kind}` }),
    el("p", { className: "muted small", text: `Issued ${formatDateTime(r.issued_at)} by ${issuer(r)}` }),
    el("p", { "data-testid": "referral-target", text: `To: ${r.target}` }),
    el("p", {
      className: "small",
      text:
        `Diagnosis ${r.diagnosis.code} ${r.diagnosis.title}` +
        (r.priority === "urgent" ? " · urgent" : "") +
        (r.reason ? ` · ${r.reason}` : ""),
    }),
    codeAndKey(r, "referral"),
    cancelledNote(r),
    extra.referral ? extra.referral(r) : null,
  );
}

export function renderSickLeave(s, extra = {}) {
  const letters = s.letter_codes.length ? ` · codes ${s.letter_codes.join(", ")}` : "";
  return el(
    "article",
    { className: "issued sick-leave", "data-testid": "issued-sick-leave", "data-sick-leave-id": s.id },
    el("h4", { text: "Sick leave (e-ZLA)" }),
    el("p", { className: "muted small", text: `Issued ${formatDateTime(s.issued_at)} by ${issuer(s)}` }),
    el("p", {
      className: "sick-leave-period",
      "data-testid": "sick-leave-period",
      text: `${formatDay(s.start)} – ${formatDay(s.end)} (${days(s.days)})`,
    }),
    el("p", {
      className: "small",
      text:
        `The patient ${SICK_LEAVE_RECOMMENDATIONS[s.recommendation] || s.recommendation}` +
        ` · diagnosis ${s.diagnosis.code} ${s.diagnosis.title}${letters}`,
    }),
    cancelledNote(s),
    extra.sickLeave ? extra.sickLeave(s) : null,
  );
}

/**
 * A link that downloads a printout through fetch, so a refusal is shown as a sentence next to
 * the link rather than saved as a file. path: the API route; filename: the saved file's name.
 */
export function downloadLink(path, filename, testid) {
  const error = el("span", { className: "document-error", role: "alert", hidden: true });
  const link = el("a", {
    href: path,
    download: filename,
    className: "download",
    "data-testid": testid,
    text: "Download PDF",
  });
  link.addEventListener("click", async (event) => {
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    if (link.dataset.busy) return;
    link.dataset.busy = "true";
    error.hidden = true;
    try {
      const url = URL.createObjectURL(await fetchFile(path));
      const save = el("a", { href: url, download: filename, hidden: true });
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      error.textContent = `Cannot download the printout: ${err.message.replace(/\.$/, "")}.`;
      error.hidden = false;
    } finally {
      delete link.dataset.busy;
    }
  });
  return el("span", { className: "download-link" }, link, error);
}
