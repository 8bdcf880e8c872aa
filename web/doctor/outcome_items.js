// The parts of the Outcome panel the doctor fills in: one e-prescription, one referral, the sick
// leave. Each keeps its form as typed (raw(): strings, restored after a reload) and turns it into
// the draft's shape (draft()): the value and the problems that keep it from being issued. Every
// input names its draft field (data-field, e.g. "prescriptions.1.dosage_instruction"), so the
// server's details.problems can be shown on the input they are about.

import { api, el } from "/static/api.js";
import { REFERRAL_KINDS } from "/static/issued.js";
import { SearchBox } from "/static/search.js";

let fields = 0; // for unique element ids

/** A labelled input; name: its draft field within the item. */
function field(label, input, name, hint) {
  const id = `outcome-field-${++fields}`;
  input.id = id;
  input.dataset.name = name;
  return el(
    "div",
    { className: "field" },
    el("label", { for: id, text: label }),
    input,
    hint ? el("p", { className: "muted small", text: hint }) : null,
  );
}

const options = (pairs, chosen) =>
  pairs.map(([value, text]) => el("option", { value, text, selected: value === String(chosen) }));

const int = (text) => (/^\d+$/.test(text.trim()) ? Number(text.trim()) : null);

// The clinic's calendar (consult/outcome/validity.py CLINIC_ZONE_NAME): the server counts a
// sick leave's days and a prescription's validity in Warsaw, so "today" is Warsaw's, not the
// browser's (a console in UTC after 23:00 put a sick leave one day back, which needs a reason).
const CLINIC_DAY = new Intl.DateTimeFormat("en-CA", {
  timeZone: "Europe/Warsaw",
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
});

/** Today on the clinic's calendar, as the API writes days ("2025-03-07"). */
export function today() {
  return CLINIC_DAY.format(new Date());
}

/** A whole number in [low, high] typed in `text`; a problem when typed but out of range. */
function counted(text, low, high, name, label, problems) {
  if (!text.trim()) return null;
  const n = int(text);
  if (n === null || n < low || n > high) {
    problems.push({ name, message: `${label}: a whole number from ${low} to ${high}` });
    return null;
  }
  return n;
}

/** The ICD-10 code box: searches as typed, a pick writes the code and shows its title. */
function diagnosisBox({ onChange, onError, testid }) {
  const title = el("p", { className: "muted small diagnosis-title" });
  const box = new SearchBox({
    label: "ICD-10 diagnosis",
    testid,
    search: async (q) =>
      (await api("GET", `/api/icd10?q=${encodeURIComponent(q)}&limit=10`)).diagnoses,
    describe: (d) => `${d.code} ${d.title}`,
    onPick: (d) => {
      box.value = d.code;
      title.textContent = d.title;
      onChange();
    },
    onType: () => {
      title.textContent = "";
      onChange();
    },
    onError,
  });
  box.input.dataset.name = "diagnosis";
  box.element.append(title);
  return { box, title };
}

class Item {
  /** prefix: the draft path of this item ("prescriptions.0", "sick_leave"). */
  setPath(prefix, heading) {
    this.prefix = prefix;
    if (this.heading) this.heading.textContent = heading;
    for (const input of this.element.querySelectorAll("[data-name]")) {
      input.dataset.field = `${prefix}.${input.dataset.name}`;
    }
  }

  problemsAt(list) {
    return list.map((p) => ({ field: `${this.prefix}.${p.name}`, message: p.message }));
  }
}

// --- one e-prescription ------------------------------------------------------------------

const PAYMENT_LEVELS = ["100%", "50%", "30%", "R", "B"];
const CATEGORY_NOTE = {
  standard: "valid 30 days",
  antibiotic: "antibiotic: valid 7 days",
  immunological: "immunological: valid 120 days",
  psychotropic_narcotic: "psychotropic or narcotic: valid 30 days",
};

const productLabel = (p) => `${p.name} ${p.strength}, ${p.form}`;

export class PrescriptionItem extends Item {
  constructor({ raw = {}, onChange, onRemove, onError }) {
    super();
    this.onChange = onChange;
    this.product = raw.product || null;
    this.search = new SearchBox({
      label: "Product",
      testid: "product-search",
      search: async (q) =>
        (await api("GET", `/api/products?q=${encodeURIComponent(q)}&limit=10`)).products,
      describe: (p) => `${productLabel(p)} (${p.substance})`,
      onPick: (p) => this.pick(p),
      onType: () => {
        // Typing again drops the product picked: what is issued is what the box shows.
        if (this.product) this.pick(null, false);
        onChange();
      },
      onError,
    });
    this.search.input.dataset.name = "product_id";
    this.search.value = this.product ? productLabel(this.product) : "";
    this.productNote = el("p", { className: "muted small", "data-testid": "product-note" });
    const input = (attrs) => el("input", { on: { input: onChange }, ...attrs });
    this.packSize = el("select", { "data-testid": "pack-size", on: { change: onChange } });
    this.packs = input({ type: "number", min: 1, max: 99, "data-testid": "packs" });
    this.packs.value = raw.packs || "1";
    this.dosage = input({ type: "text", maxlength: 500, "data-testid": "dosage" });
    this.dosage.value = raw.dosage_instruction || "";
    this.payment = el(
      "select",
      { "data-testid": "payment-level", on: { change: onChange } },
      options(
        PAYMENT_LEVELS.map((level) => [level, level]),
        raw.payment_level || "100%",
      ),
    );
    this.from = input({ type: "date", "data-testid": "dispense-from" });
    this.from.value = raw.dispense_from || "";
    this.validity = input({ type: "number", min: 1, max: 365, "data-testid": "validity-days" });
    this.validity.value = raw.validity_days || "";
    this.therapy = input({ type: "number", min: 1, max: 360, "data-testid": "therapy-days" });
    this.therapy.value = raw.therapy_days || "";
    this.longTerm = el(
      "div",
      { className: "field-row", "data-testid": "long-term" },
      field("Validity (days, up to 365)", this.validity, "validity_days",
        "Long-term treatment only; empty: the usual 30 days."),
      field("Therapy (days, up to 360)", this.therapy, "therapy_days"),
    );
    this.heading = el("h6", {});
    this.element = el(
      "fieldset",
      { className: "outcome-item", "data-testid": "prescription-item" },
      el("legend", {}, this.heading),
      this.search.element,
      this.productNote,
      el(
        "div",
        { className: "field-row" },
        field("Pack size", this.packSize, "pack_size"),
        field("Packs", this.packs, "packs"),
        field("Payment", this.payment, "payment_level"),
      ),
      field("Dosage (required)", this.dosage, "dosage_instruction"),
      field("Dispense from (optional)", this.from, "dispense_from"),
      this.longTerm,
      removeButton("Remove prescription", onRemove),
    );
    this.pick(this.product, false, raw.pack_size);
  }

  /** The product picked (or none): its pack sizes, and the long-term fields if it allows. */
  pick(product, announce = true, packSize = "") {
    this.product = product;
    if (product && announce) this.search.value = productLabel(product);
    const sizes = product ? product.pack_sizes : [];
    this.packSize.replaceChildren(
      ...options(
        sizes.map((n) => [String(n), `${n}`]),
        packSize || sizes[0],
      ),
    );
    this.packSize.disabled = !product;
    this.longTerm.hidden = !(product && product.long_term_eligible);
    this.productNote.textContent = product
      ? `${product.substance} · ${CATEGORY_NOTE[product.category] || product.category}` +
        (product.long_term_eligible ? " · may be prescribed for long-term treatment" : "")
      : "";
    if (announce) {
      this.onChange();
      this.dosage.focus();
    }
  }

  raw() {
    return {
      product: this.product,
      pack_size: this.packSize.value,
      packs: this.packs.value,
      dosage_instruction: this.dosage.value,
      payment_level: this.payment.value,
      dispense_from: this.from.value,
      validity_days: this.validity.value,
      therapy_days: this.therapy.value,
    };
  }

  draft() {
    const problems = [];
    if (!this.product) problems.push({ name: "product_id", message: "choose a product" });
    if (!this.dosage.value.trim()) problems.push({ name: "dosage_instruction", message: "write the dosage" });
    const packs = counted(this.packs.value || "1", 1, 99, "packs", "packs", problems);
    const value = {
      product_id: this.product ? this.product.id : null,
      pack_size: int(this.packSize.value),
      packs: packs || 1,
      dosage_instruction: this.dosage.value.trim(),
      payment_level: this.payment.value,
      dispense_from: this.from.value || null,
    };
    if (this.product && this.product.long_term_eligible) {
      const validity = counted(this.validity.value, 1, 365, "validity_days", "validity", problems);
      const therapy = counted(this.therapy.value, 1, 360, "therapy_days", "therapy", problems);
      if (validity !== null) value.validity_days = validity;
      if (therapy !== null) value.therapy_days = therapy;
      if (validity !== null && therapy === null) {
        problems.push({ name: "therapy_days", message: "long-term treatment states its days of therapy" });
      }
    }
    return { value, problems: this.problemsAt(problems) };
  }
}

// --- one referral ------------------------------------------------------------------------

export class ReferralItem extends Item {
  constructor({ raw = {}, targets, onChange, onRemove, onError }) {
    super();
    this.kind = el(
      "select",
      { "data-testid": "referral-kind", on: { change: onChange } },
      options(Object.entries(REFERRAL_KINDS), raw.kind || "specialist_consultation"),
    );
    this.target = el("input", {
      type: "text",
      maxlength: 200,
      list: targets,
      placeholder: "a specialty (e.g. cardiology) or a test",
      "data-testid": "referral-target",
      on: { input: onChange },
    });
    this.target.value = raw.target || "";
    ({ box: this.diagnosis, title: this.diagnosisTitle } = diagnosisBox({
      onChange,
      onError,
      testid: "referral-diagnosis",
    }));
    this.diagnosis.value = raw.diagnosis || "";
    this.diagnosisTitle.textContent = raw.diagnosis_title || "";
    this.reason = el("textarea", { rows: 2, maxlength: 2000, "data-testid": "referral-reason", on: { input: onChange } });
    this.reason.value = raw.reason || "";
    this.priority = el(
      "select",
      { "data-testid": "referral-priority", on: { change: onChange } },
      options([["routine", "Routine"], ["urgent", "Urgent"]], raw.priority || "routine"),
    );
    this.heading = el("h6", {});
    this.element = el(
      "fieldset",
      { className: "outcome-item", "data-testid": "referral-item" },
      el("legend", {}, this.heading),
      el(
        "div",
        { className: "field-row" },
        field("Kind", this.kind, "kind"),
        field("Priority", this.priority, "priority"),
      ),
      field("Target", this.target, "target"),
      this.diagnosis.element,
      field("Clinical reason", this.reason, "reason"),
      removeButton("Remove referral", onRemove),
    );
  }

  raw() {
    return {
      kind: this.kind.value,
      target: this.target.value,
      diagnosis: this.diagnosis.value,
      diagnosis_title: this.diagnosisTitle.textContent,
      reason: this.reason.value,
      priority: this.priority.value,
    };
  }

  draft() {
    const problems = [];
    if (!this.target.value.trim()) problems.push({ name: "target", message: "say what it refers to" });
    const code = this.diagnosis.value.trim();
    if (!/^[A-Za-z][0-9]{2}\.?[0-9A-Za-z]{0,4}$/.test(code)) {
      problems.push({ name: "diagnosis", message: "an ICD-10 code (search by code or words)" });
    }
    const value = {
      kind: this.kind.value,
      target: this.target.value.trim(),
      diagnosis: code,
      reason: this.reason.value.trim(),
      priority: this.priority.value,
    };
    return { value, problems: this.problemsAt(problems) };
  }
}

// --- sick leave --------------------------------------------------------------------------

const LETTER_CODES = [
  ["B", "B (pregnancy)"],
  ["D", "D (tuberculosis)"],
  ["E", "E (infectious disease)"],
];

export class SickLeaveItem extends Item {
  constructor({ raw = {}, onChange, onRemove, onError }) {
    super();
    const changed = () => {
      this.showBackdating();
      onChange();
    };
    this.start = el("input", { type: "date", "data-testid": "sick-leave-start", on: { input: changed } });
    this.start.value = raw.start || today();
    this.end = el("input", { type: "date", "data-testid": "sick-leave-end", on: { input: changed } });
    this.end.value = raw.end || "";
    this.backdating = el("input", {
      type: "text",
      maxlength: 500,
      "data-testid": "sick-leave-backdating",
      on: { input: onChange },
    });
    this.backdating.value = raw.backdating_reason || "";
    this.backdatingField = field(
      "Why it starts before today (required)",
      this.backdating,
      "backdating_reason",
      "Sick leave may start at most 3 days before the day of issue.",
    );
    this.recommendation = el(
      "select",
      { "data-testid": "sick-leave-recommendation", on: { change: onChange } },
      options(
        [["", "Choose…"], ["1", "1: lie down"], ["2", "2: may walk"]],
        raw.recommendation || "",
      ),
    );
    ({ box: this.diagnosis, title: this.diagnosisTitle } = diagnosisBox({
      onChange,
      onError,
      testid: "sick-leave-diagnosis",
    }));
    this.diagnosis.value = raw.diagnosis || "";
    this.diagnosisTitle.textContent = raw.diagnosis_title || "";
    this.letters = LETTER_CODES.map(([code, text]) => {
      const box = el("input", {
        type: "checkbox",
        value: code,
        checked: (raw.letter_codes || []).includes(code),
        "data-testid": `sick-leave-letter-${code}`,
        on: { change: onChange },
      });
      return { box, label: el("label", { className: "inline" }, box, ` ${text}`) };
    });
    this.nip = el("input", { type: "text", maxlength: 13, "data-testid": "sick-leave-nip", on: { input: onChange } });
    this.nip.value = raw.employer_nip || "";
    this.heading = el("h6", { text: "Sick leave (e-ZLA)" });
    this.element = el(
      "fieldset",
      { className: "outcome-item", "data-testid": "sick-leave-item" },
      el("legend", {}, this.heading),
      el(
        "div",
        { className: "field-row" },
        field("From", this.start, "start"),
        field("To", this.end, "end"),
        field("Recommendation", this.recommendation, "recommendation"),
      ),
      this.backdatingField,
      this.diagnosis.element,
      el(
        "fieldset",
        { className: "letters" },
        el("legend", { text: "Letter codes (optional)" }),
        this.letters.map((l) => l.label),
      ),
      field("Employer's NIP (optional)", this.nip, "employer_nip"),
      removeButton("Remove sick leave", onRemove),
    );
    this.showBackdating();
  }

  showBackdating() {
    this.backdatingField.hidden = !(this.start.value && this.start.value < today());
  }

  raw() {
    return {
      start: this.start.value,
      end: this.end.value,
      backdating_reason: this.backdating.value,
      recommendation: this.recommendation.value,
      diagnosis: this.diagnosis.value,
      diagnosis_title: this.diagnosisTitle.textContent,
      letter_codes: this.letters.filter((l) => l.box.checked).map((l) => l.box.value),
      employer_nip: this.nip.value,
    };
  }

  draft() {
    const problems = [];
    if (!this.start.value) problems.push({ name: "start", message: "the first day" });
    if (!this.end.value) problems.push({ name: "end", message: "the last day" });
    if (!this.recommendation.value) problems.push({ name: "recommendation", message: "choose 1 or 2" });
    const code = this.diagnosis.value.trim();
    if (!/^[A-Za-z][0-9]{2}\.?[0-9A-Za-z]{0,4}$/.test(code)) {
      problems.push({ name: "diagnosis", message: "an ICD-10 code (search by code or words)" });
    }
    const backdated = !this.backdatingField.hidden;
    const value = {
      start: this.start.value || null,
      end: this.end.value || null,
      backdating_reason: backdated ? this.backdating.value.trim() || null : null,
      recommendation: int(this.recommendation.value),
      diagnosis: code,
      letter_codes: this.raw().letter_codes,
      employer_nip: this.nip.value.trim() || null,
    };
    return { value, problems: this.problemsAt(problems) };
  }
}

function removeButton(text, onRemove) {
  return el("button", {
    type: "button",
    className: "link remove",
    text,
    on: { click: onRemove },
  });
}
