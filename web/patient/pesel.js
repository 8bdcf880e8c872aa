// The patient's PESEL, which an e-prescription and sick leave need: when the profile has none,
// the page asks for it at the top (so it can be given while waiting or during a consultation,
// when the doctor says so). The server checks the digits, the checksum and the date of birth
// and says what is wrong.

import { api, show } from "/static/api.js";

export class PeselForm {
  /** nodes: {section, form, input, button, error, saved}. */
  constructor({ nodes }) {
    this.nodes = nodes;
    this.sending = false;
    nodes.form.addEventListener("submit", (event) => this._submit(event));
  }

  async load() {
    const { pesel } = await api("GET", "/api/patients/me/pesel");
    show(this.nodes.section, pesel === null);
    show(this.nodes.saved, false);
  }

  clear() {
    show(this.nodes.section, false);
    this.nodes.input.value = "";
    show(this.nodes.error, false);
  }

  async _submit(event) {
    event.preventDefault();
    if (this.sending) return;
    const { input, button, error, saved, section } = this.nodes;
    const pesel = input.value.trim();
    show(error, false);
    if (!pesel) {
      error.textContent = "Type your PESEL (11 digits).";
      show(error);
      return;
    }
    this.sending = true;
    button.disabled = true;
    try {
      await api("PUT", "/api/patients/me/pesel", { pesel });
      input.value = "";
      show(section, false);
      show(saved);
    } catch (err) {
      error.textContent = err.message.charAt(0).toUpperCase() + err.message.slice(1);
      show(error);
      input.setAttribute("aria-invalid", "true");
    } finally {
      this.sending = false;
      button.disabled = false;
    }
  }
}
