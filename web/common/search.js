// A text box that searches as the user types (products, ICD-10 codes) and offers what it found
// as a list to pick from. One request per pause in typing (debounced); an answer that arrives
// after a newer one was asked for is dropped, so the list always matches what is typed.

import { el } from "/static/api.js";

const DELAY_MS = 250;
let boxes = 0; // for unique element ids

export class SearchBox {
  /**
   * label: the field's label; search(q): the items for q (a promise); describe(item): the
   * option's text; onPick(item): an option chosen; onType(text): after each keystroke;
   * onError(err): a failed search. field: the draft field path it edits (data-field).
   */
  constructor({ label, search, describe, onPick, onType = () => {}, onError, testid, field }) {
    Object.assign(this, { search, describe, onPick, onType, onError });
    const id = `search-box-${++boxes}`;
    this.timer = null;
    this.asked = 0; // the latest search asked for; earlier answers are dropped
    this.input = el("input", {
      id,
      type: "text",
      autocomplete: "off",
      role: "combobox",
      "aria-autocomplete": "list",
      "aria-expanded": "false",
      "aria-controls": `${id}-list`,
      "data-testid": testid,
      "data-field": field,
      on: {
        input: () => this._typed(),
        keydown: (event) => this._key(event),
      },
    });
    this.list = el("ul", {
      id: `${id}-list`,
      className: "search-results",
      role: "listbox",
      hidden: true,
      "data-testid": `${testid}-results`,
    });
    this.element = el(
      "div",
      {
        className: "search-box",
        // Leaving the box (not for one of its options) closes the list.
        on: {
          focusout: (event) => {
            if (!this.element.contains(event.relatedTarget)) this.close();
          },
        },
      },
      el("label", { for: id, text: label }),
      this.input,
      this.list,
    );
  }

  get value() {
    return this.input.value;
  }

  set value(text) {
    this.input.value = text;
  }

  close() {
    clearTimeout(this.timer);
    this.asked += 1;
    this.list.replaceChildren();
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
  }

  _typed() {
    this.onType(this.input.value);
    clearTimeout(this.timer);
    const q = this.input.value.trim();
    if (!q) {
      this.close();
      return;
    }
    this.timer = setTimeout(() => this._run(q), DELAY_MS);
  }

  async _run(q) {
    const asked = ++this.asked;
    let items;
    try {
      items = await this.search(q);
    } catch (err) {
      if (asked === this.asked) this.onError(err);
      return;
    }
    if (asked !== this.asked) return; // typed on meanwhile: a newer search is on its way
    this._show(items);
  }

  _show(items) {
    this.list.replaceChildren(
      ...items.map((item) =>
        el(
          "li",
          { role: "presentation" },
          el("button", {
            type: "button",
            role: "option",
            className: "search-option",
            text: this.describe(item),
            on: {
              click: () => {
                this.close();
                this.onPick(item);
              },
              keydown: (event) => this._key(event),
            },
          }),
        ),
      ),
    );
    if (!items.length) {
      this.list.append(el("li", { className: "muted small", text: "Nothing found." }));
    }
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
  }

  /** Arrow keys move between the box and the options; Escape closes the list. */
  _key(event) {
    const options = [...this.list.querySelectorAll("button")];
    const at = options.indexOf(document.activeElement);
    if (event.key === "Escape") {
      this.close();
      this.input.focus();
    } else if (event.key === "ArrowDown" && options.length) {
      event.preventDefault();
      options[Math.min(at + 1, options.length - 1)].focus();
    } else if (event.key === "ArrowUp" && at >= 0) {
      event.preventDefault();
      if (at === 0) this.input.focus();
      else options[at - 1].focus();
    }
  }
}
