// The Outcome panel of an active consultation: the recommendation, up to 5 e-prescriptions,
// referrals and sick leave, and "Issue and end", which issues them all and ends the visit in
// one request.
//
// The draft is saved as the doctor types (PUT …/outcome/draft, 500 ms after the last keystroke)
// and read back when the card opens, after a reload and after a reconnect. The server keeps only
// complete items (its draft has the issued shape); what is half-typed is also kept in this tab's
// sessionStorage with the draft version it was typed on, so a reload of the tab restores it
// too. "Issue and end" carries an Idempotency-Key made once per consultation and kept in
// sessionStorage until the outcome is stored: a double click, a retry after a lost answer or a
// reload send the same key and get the same outcome.

import { api, el, formatTime, newClientId, show } from "/static/api.js";
import { IssuedView } from "/doctor/outcome_issued.js";
import { PrescriptionItem, ReferralItem, SickLeaveItem } from "/doctor/outcome_items.js";

const SAVE_DELAY_MS = 500;
const MAX_PRESCRIPTIONS = 5;
const MAX_REFERRALS = 5;
const TARGETS_ID = "referral-targets";

const products = new Map(); // product id -> product (the catalogue does not change under a page)

async function productById(id) {
  if (!products.has(id)) {
    try {
      products.set(id, await api("GET", `/api/products/${id}`));
    } catch (err) {
      if (err.code !== "product_not_found") throw err;
      products.set(id, null); // gone from the catalogue: the doctor picks another
    }
  }
  return products.get(id);
}

/** The specialties offered as referral targets (a <datalist> the page shares), once. */
let targetsLoaded = null;
function loadTargets() {
  if (!targetsLoaded) {
    const list = el("datalist", { id: TARGETS_ID });
    document.body.append(list);
    targetsLoaded = api("GET", "/api/specialties").then(({ specialties }) =>
      list.replaceChildren(...specialties.map((s) => el("option", { value: s.code, label: s.name }))),
    );
    targetsLoaded.catch(() => {
      targetsLoaded = null; // only suggestions: try again with the next card
    });
  }
}

const sessionGet = (key) => {
  try {
    return JSON.parse(sessionStorage.getItem(key) || "null");
  } catch {
    return null;
  }
};
const sessionSet = (key, value) => {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, JSON.stringify(value));
  } catch {
    // storage full or disabled: the server's draft and a fresh key still work
  }
};

const sentence = (text) => text.charAt(0).toUpperCase() + text.slice(1);

export class OutcomePanel {
  /** onIssued(outcome): after "Issue and end" (the consultation has ended);
   * onRecommendation(saved): a recommendation saved now with "Save recommendation". */
  constructor({ consultation, onError, onIssued, onRecommendation }) {
    Object.assign(this, { consultation, onError, onIssued, onRecommendation });
    this.id = consultation.id;
    this.version = 0;
    this.timer = null;
    this.saving = null; // the save in flight
    this.dirty = false; // typed since the last save that went through
    this.sending = false;
    this.closed = false; // ended: nothing is saved any more
    this.items = { prescriptions: [], referrals: [], sickLeave: null };
    this.issued = new IssuedView({ onError });
    this._build();
    loadTargets();
  }

  get localKey() {
    return `consult.outcome.${this.id}.draft`;
  }

  get idempotencyKey() {
    const key = `consult.outcome.${this.id}.key`;
    let value = sessionGet(key);
    if (!value) {
      value = newClientId();
      sessionSet(key, value);
    }
    return value;
  }

  _build() {
    const textId = `recommendation-${this.id}`;
    this.recommendation = el("textarea", {
      id: textId,
      rows: 4,
      maxlength: 4000,
      placeholder: "e.g. Rest, fluids, paracetamol 500 mg up to 4× a day; see a GP in 3 days.",
      "data-testid": "recommendation-input",
      "data-field": "recommendation",
    });
    this.saveButton = el("button", { type: "submit", text: "Save recommendation", "data-testid": "save-recommendation" });
    this.recommendationForm = el(
      "form",
      { className: "recommendation-form", on: { submit: (e) => this.saveRecommendation(e) } },
      el("label", { for: textId, text: "Recommendation for the patient's record" }),
      this.recommendation,
      el("div", { className: "actions" }, this.saveButton),
    );
    const add = (text, testid, action) =>
      el("button", { type: "button", className: "secondary", text, "data-testid": testid, on: { click: action } });
    this.prescriptionList = el("div", { "data-testid": "prescriptions" });
    this.addPrescription = add("Add prescription", "add-prescription", () => this.add("prescriptions"));
    this.referralList = el("div", { "data-testid": "referrals" });
    this.addReferral = add("Add referral", "add-referral", () => this.add("referrals"));
    this.sickLeaveBox = el("div", {});
    this.addSickLeave = add("Add sick leave", "add-sick-leave", () => this.setSickLeave({}));
    this.warnings = el("div", { className: "notice small", role: "status", "data-testid": "outcome-warnings", hidden: true });
    this.problems = el("div", { className: "notice error small", role: "alert", "data-testid": "outcome-problems", hidden: true });
    this.status = el("p", { className: "muted small", "aria-live": "polite", "data-testid": "draft-status" });
    this.issueButton = el("button", {
      type: "button",
      text: "Issue and end",
      "data-testid": "issue-and-end",
      on: { click: () => this.issue() },
    });
    this.form = el(
      "div",
      { className: "outcome-form", on: { input: (e) => this._typed(e), change: (e) => this._typed(e) } },
      this.recommendationForm,
      el("h5", { text: "E-prescriptions (one package, up to 5)" }),
      this.prescriptionList,
      this.addPrescription,
      el("h5", { text: "Referrals" }),
      this.referralList,
      this.addReferral,
      el("h5", { text: "Sick leave" }),
      this.sickLeaveBox,
      this.addSickLeave,
      this.warnings,
      this.problems,
      el("div", { className: "actions issue" }, this.issueButton, this.status),
    );
    this.element = el("div", { className: "outcome-panel", "data-testid": "outcome-panel" }, this.form, this.issued.element);
  }

  // --- the form ---------------------------------------------------------------------------

  add(kind, raw = {}, announce = true) {
    const list = this.items[kind];
    const common = {
      raw,
      onChange: () => this.scheduleSave(), // a pick from a list, which is no input event
      onError: this.onError,
      onRemove: () => {
        list.splice(list.indexOf(item), 1);
        item.element.remove();
        this._layout();
        this.scheduleSave();
      },
    };
    const item =
      kind === "prescriptions"
        ? new PrescriptionItem(common)
        : new ReferralItem({ ...common, targets: TARGETS_ID });
    list.push(item);
    (kind === "prescriptions" ? this.prescriptionList : this.referralList).append(item.element);
    this._layout();
    if (announce) {
      item.element.querySelector("input, select").focus();
      this.scheduleSave();
    }
  }

  setSickLeave(raw, announce = true) {
    if (this.items.sickLeave) this.items.sickLeave.element.remove();
    this.items.sickLeave = null;
    if (raw) {
      const item = new SickLeaveItem({
        raw,
        onChange: () => this.scheduleSave(),
        onError: this.onError,
        onRemove: () => this.setSickLeave(null),
      });
      this.items.sickLeave = item;
      this.sickLeaveBox.append(item.element);
      if (announce) item.end.focus();
    }
    this._layout();
    if (announce) this.scheduleSave();
  }

  /** Headings and field paths follow the order; the Add buttons their limits. */
  _layout() {
    this.items.prescriptions.forEach((item, i) => item.setPath(`prescriptions.${i}`, `Prescription ${i + 1}`));
    this.items.referrals.forEach((item, i) => item.setPath(`referrals.${i}`, `Referral ${i + 1}`));
    if (this.items.sickLeave) this.items.sickLeave.setPath("sick_leave", "Sick leave (e-ZLA)");
    this.addPrescription.disabled = this.items.prescriptions.length >= MAX_PRESCRIPTIONS;
    this.addReferral.disabled = this.items.referrals.length >= MAX_REFERRALS;
    show(this.addSickLeave, !this.items.sickLeave);
  }

  _typed(event) {
    if (event.target && event.target.removeAttribute) event.target.removeAttribute("aria-invalid");
    this.scheduleSave();
  }

  /** The form as typed (for this tab's copy) and as the draft / the request to issue. */
  collect() {
    const parts = {
      prescriptions: this.items.prescriptions.map((i) => i.draft()),
      referrals: this.items.referrals.map((i) => i.draft()),
      sickLeave: this.items.sickLeave ? this.items.sickLeave.draft() : null,
    };
    const complete = (list) => list.filter((p) => !p.problems.length).map((p) => p.value);
    const leave = parts.sickLeave;
    return {
      raw: {
        recommendation: this.recommendation.value,
        prescriptions: this.items.prescriptions.map((i) => i.raw()),
        referrals: this.items.referrals.map((i) => i.raw()),
        sick_leave: this.items.sickLeave ? this.items.sickLeave.raw() : null,
      },
      // The server's draft has the issued shape: only what is complete is saved there.
      draft: {
        recommendation: this.recommendation.value.trim(),
        prescriptions: complete(parts.prescriptions),
        referrals: complete(parts.referrals),
        sick_leave: leave && !leave.problems.length ? leave.value : null,
      },
      problems: [
        ...parts.prescriptions.flatMap((p) => p.problems),
        ...parts.referrals.flatMap((p) => p.problems),
        ...(leave ? leave.problems : []),
      ],
    };
  }

  _fill(raw) {
    this.recommendation.value = raw.recommendation || "";
    for (const item of [...this.items.prescriptions, ...this.items.referrals]) item.element.remove();
    this.items.prescriptions = [];
    this.items.referrals = [];
    for (const p of raw.prescriptions || []) this.add("prescriptions", p, false);
    for (const r of raw.referrals || []) this.add("referrals", r, false);
    this.setSickLeave(raw.sick_leave || null, false);
  }

  // --- the draft --------------------------------------------------------------------------

  /** The saved draft (on open, and after a reconnect when nothing typed here is unsaved). */
  async load() {
    const saved = await api("GET", `/api/consultations/${this.id}/outcome/draft`);
    if (this.dirty || this.closed) return; // typed meanwhile: what is typed is saved instead
    if (saved.version === this.version && this.version !== 0) return;
    const local = sessionGet(this.localKey);
    // This tab's copy was typed on the version the server has: it holds the half-typed items too.
    const raw = local && local.version === saved.version ? local.raw : await rawOf(saved.draft);
    this.version = saved.version;
    this._fill(raw);
    this._warn(saved.warnings);
    if (local && local.version === saved.version) this.scheduleSave();
    this.status.textContent = saved.updated_at ? `Draft saved ${formatTime(saved.updated_at)}` : "";
  }

  /** After a reconnect: what was typed meanwhile goes to the server, else the server's draft. */
  reconnected() {
    if (this.closed) return;
    if (this.dirty) this.save();
    else this.load().catch((err) => this.onError(err));
  }

  scheduleSave() {
    if (this.closed) return;
    this.dirty = true;
    sessionSet(this.localKey, { version: this.version, raw: this.collect().raw });
    // Not "Draft saved" from the last save while this change waits for its own: a doctor who
    // reloaded then lost it (and a test that waited for the words raced the timer).
    this.status.textContent = "Saving…";
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.save(), SAVE_DELAY_MS);
  }

  /** One save at a time; typing meanwhile saves again after it. */
  async save() {
    clearTimeout(this.timer);
    if (this.saving) {
      this.again = true;
      return this.saving;
    }
    this.saving = (async () => {
      do {
        this.again = false;
        if (this.closed) break;
        this.dirty = false;
        const { raw, draft } = this.collect();
        this.status.textContent = "Saving…";
        try {
          const saved = await api("PUT", `/api/consultations/${this.id}/outcome/draft`, draft);
          this.version = saved.version;
          sessionSet(this.localKey, { version: saved.version, raw });
          this._warn(saved.warnings);
          this.status.textContent = `Draft saved ${formatTime(saved.updated_at)}`;
        } catch (err) {
          this.dirty = true; // saved again with the next keystroke or reconnect
          if (err.code === "consultation_ended") this.closed = true;
          this.status.textContent = `Draft not saved: ${err.message.replace(/\.$/, "")}.`;
          break;
        }
      } while (this.again);
    })();
    try {
      await this.saving;
    } finally {
      this.saving = null;
    }
  }

  _warn(warnings) {
    this.warnings.textContent = warnings.length ? `${sentence(warnings.join("; "))}.` : "";
    show(this.warnings, warnings.length > 0);
  }

  // --- issue and end ----------------------------------------------------------------------

  async issue() {
    if (this.sending) return; // a double click while the first request is on its way
    this._problems([]);
    const { draft, problems } = this.collect();
    if (problems.length) {
      this._problems(problems);
      return;
    }
    this.sending = true;
    this.issueButton.disabled = true;
    this.form.inert = true;
    clearTimeout(this.timer);
    this.status.textContent = "Issuing…";
    try {
      const outcome = await api("POST", `/api/consultations/${this.id}/outcome`, draft, {
        "Idempotency-Key": this.idempotencyKey,
      });
      this.finish(outcome);
    } catch (err) {
      await this._refused(err).catch((lookup) => this.onError(lookup));
    } finally {
      this.sending = false;
      this.issueButton.disabled = false;
      this.form.inert = false;
    }
  }

  /** The consultation ended without "Issue and end" (End consultation, or the patient left):
   * nothing more is saved and the form goes. */
  ended() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    sessionSet(this.localKey, null);
    show(this.form, false);
  }

  /** Issued (here, or in another tab: outcome:issued): the documents instead of the form. */
  finish(outcome) {
    this.closed = true;
    clearTimeout(this.timer);
    sessionSet(this.localKey, null);
    sessionSet(`consult.outcome.${this.id}.key`, null);
    show(this.form, false);
    this.issued.show(outcome);
    this.onIssued(outcome);
  }

  async _refused(err) {
    this.status.textContent = "";
    if (err.code === "consultation_ended" || err.code === "idempotency_key_reused") {
      // Ended meanwhile: by this request in another tab, or an earlier try whose answer was lost.
      try {
        this.finish(await api("GET", `/api/consultations/${this.id}/outcome`));
        return;
      } catch (lookup) {
        if (lookup.code !== "outcome_not_found") throw lookup;
        this.closed = true;
        this._problems([{ message: "The consultation ended without documents." }]);
        return;
      }
    }
    const found = (err.details && err.details.problems) || [];
    const field = FIELD_OF_CODE[err.code];
    if (found.length) this._problems(found.map((p) => ({ field: p.field, message: p.problem })));
    else this._problems([{ field, message: err.message }]);
  }

  /** Problems listed above the button, each input concerned marked invalid. */
  _problems(list) {
    for (const node of this.form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
    const lines = list.map((p) => {
      const input = p.field ? this.form.querySelector(`[data-field="${CSS.escape(p.field)}"]`) : null;
      if (input) input.setAttribute("aria-invalid", "true");
      return el("li", { "data-field": p.field, text: sentence(`${where(input)}${p.message}`) });
    });
    this.problems.replaceChildren(...(lines.length ? [el("ul", {}, lines)] : []));
    show(this.problems, lines.length > 0);
  }

  // --- a recommendation now ---------------------------------------------------------------

  async saveRecommendation(event) {
    event.preventDefault();
    const text = this.recommendation.value.trim();
    if (!text) {
      this.onError("Write the recommendation first.");
      return;
    }
    this.saveButton.disabled = true;
    try {
      const saved = await api("POST", `/api/consultations/${this.id}/recommendations`, { text });
      this.onRecommendation(saved);
      this.recommendation.value = "";
      this.scheduleSave(); // the draft no longer carries it
    } catch (err) {
      this.onError(err);
    } finally {
      this.saveButton.disabled = false;
    }
  }
}

// The refusals that name no field, on the input they are about.
const FIELD_OF_CODE = {
  sick_leave_period_reversed: "sick_leave.end",
  sick_leave_backdated_too_far: "sick_leave.start",
  sick_leave_backdating_reason_required: "sick_leave.backdating_reason",
  sick_leave_too_long: "sick_leave.end",
  nip_invalid_format: "sick_leave.employer_nip",
  nip_bad_checksum: "sick_leave.employer_nip",
};

/** "Prescription 2 · Dosage (required): " for a problem with an input. */
function where(input) {
  if (!input) return "";
  const item = input.closest("fieldset.outcome-item");
  const heading = item ? item.querySelector("legend").textContent : "";
  const label = input.id ? document.querySelector(`label[for="${input.id}"]`) : null;
  const name = label ? label.textContent.replace(/ \((required|optional)\)$/, "") : "";
  return [heading, name].filter(Boolean).join(" · ") + ": ";
}

/** A saved draft (the API's shape) as the form's raw values, with its products read. */
async function rawOf(draft) {
  const found = await Promise.all((draft.prescriptions || []).map((p) => productById(p.product_id)));
  const text = (v) => (v === null || v === undefined ? "" : String(v));
  return {
    recommendation: draft.recommendation || "",
    prescriptions: (draft.prescriptions || []).map((p, i) => ({
      product: found[i],
      pack_size: text(p.pack_size),
      packs: text(p.packs),
      dosage_instruction: p.dosage_instruction,
      payment_level: p.payment_level,
      dispense_from: text(p.dispense_from),
      validity_days: text(p.validity_days),
      therapy_days: text(p.therapy_days),
    })),
    referrals: (draft.referrals || []).map((r) => ({ ...r, diagnosis_title: "" })),
    sick_leave: draft.sick_leave
      ? {
          ...draft.sick_leave,
          recommendation: text(draft.sick_leave.recommendation),
          backdating_reason: text(draft.sick_leave.backdating_reason),
          employer_nip: text(draft.sick_leave.employer_nip),
        }
      : null,
  };
}
