// Laboratory and imaging results ({patient, results: [{code, effective_at, sender, status,
// conclusion, pdf, observations: [{code, value, unit, range, flag, flag_source, ...}]}], next}),
// newest first, a page at a time: each report with its values, units and reference ranges, the
// values out of range marked (↑ high, ↓ low, ! abnormal; from the laboratory's flag, else from
// the range), the conclusion and the PDF. Pressing a value's "History" draws its values over
// time as a small chart (inline SVG: the reference range as a band, the values as a line with
// the out-of-range ones marked). Shared by the patient's page and the doctor's console; the
// timeline (timeline.js) draws its results with the same ResultCards.

import { api, el, formatDateTime } from "/static/api.js";
import { downloadLink } from "/static/issued.js";

const SVG = "http://www.w3.org/2000/svg";
const OUT = new Set(["high", "low", "abnormal"]);
const MARK = { high: "↑", low: "↓", abnormal: "!" };
const FLAG_TEXT = { high: "High", low: "Low", abnormal: "Abnormal", normal: "Normal" };

export class ResultsView {
  /**
   * container: where the results go; path: "/api/patients/me/results" or
   * "/api/patients/<id>/results" (the history is read at path + "/history"); heading: the
   * element of each result's title (h3 on a page's section); onError(err).
   */
  constructor(container, { path, heading = "h3", onError }) {
    Object.assign(this, { container, path, onError });
    this.results = [];
    this.next = null;
    this.cards = new ResultCards({ path, heading, onChange: () => this.render(), onError });
  }

  /** The first page again, and as many older ones as were shown. */
  async load() {
    const shown = this.results.length;
    let page = await api("GET", this.path);
    const results = [...page.results];
    while (page.next !== null && results.length < shown) {
      page = await api("GET", `${this.path}?before=${page.next}`);
      results.push(...page.results);
    }
    Object.assign(this, { results, next: page.next });
    this.render();
  }

  async showOlder() {
    if (this.next === null) return;
    const page = await api("GET", `${this.path}?before=${this.next}`);
    this.results.push(...page.results);
    this.next = page.next;
    this.render();
  }

  /** A result that arrived (result:received): in its place, replacing an earlier version. */
  received(result) {
    this.results = this.results.filter((r) => r.id !== result.id);
    this.results.push(result);
    this.results.sort((a, b) => b.effective_at.localeCompare(a.effective_at) || b.id - a.id);
    this.cards.forget(result);
    this.render();
  }

  clear() {
    Object.assign(this, { results: [], next: null });
    this.cards.clear();
    this.container.replaceChildren();
  }

  render() {
    const children = this.results.map((r) => this.cards.render(r));
    if (!this.results.length) {
      const empty = "No laboratory or imaging results yet.";
      children.push(el("p", { className: "muted", "data-testid": "results-empty", text: empty }));
    }
    if (this.next !== null) {
      const older = el("button", {
        type: "button",
        className: "secondary",
        "data-testid": "results-older",
        text: "Show older results",
      });
      older.addEventListener("click", () => this.cards.run(older, () => this.showOlder()));
      children.push(older);
    }
    this.container.replaceChildren(...children);
  }
}

/**
 * Results drawn one at a time (render(result): an article with its values, units, ranges, the
 * out-of-range ones marked, the conclusion and the PDF), each value with its "History" button;
 * the histories shown are kept here, so the owner's list draws again with them in place
 * (onChange: after one is shown or hidden). path: the patient's results route (the history is
 * read at path + "/history"); heading: the element of each result's title.
 */
export class ResultCards {
  constructor({ path, heading = "h3", onChange, onError }) {
    Object.assign(this, { path, heading, onChange, onError });
    this.charts = new Map(); // "system|code" -> the history shown under that value's row
  }

  /** A result changed (a correction arrived): its values' histories are read again on demand. */
  forget(result) {
    for (const o of result.observations) this.charts.delete(key(o.code));
  }

  clear() {
    this.charts.clear();
  }

  render(result) {
    const out = result.out_of_range;
    return el(
      "article",
      { className: "result", "data-testid": "result", "data-result-id": result.id },
      el(
        "header",
        {},
        el(this.heading, { text: result.code.display }),
        el(
          "p",
          { className: "muted" },
          el("time", { datetime: result.effective_at, text: formatDateTime(result.effective_at) }),
          ` · ${result.performer || result.sender}`,
          result.category ? ` · ${result.category.display}` : "",
          result.status !== "final" ? ` · ${result.status}` : "",
          out
            ? el("span", {
                className: "badge out-of-range",
                "data-testid": "result-out-of-range",
                text: `${out} out of range`,
              })
            : null,
        ),
      ),
      result.observations.length ? this.renderValues(result) : null,
      result.conclusion
        ? el("p", {
            className: "result-conclusion",
            "data-testid": "result-conclusion",
            text: result.conclusion,
          })
        : null,
      result.pdf ? downloadLink(result.pdf.url, `result-${result.id}.pdf`, "result-pdf") : null,
    );
  }

  renderValues(result) {
    const rows = [];
    for (const o of result.observations) {
      rows.push(this.renderValue(o, result));
      const chart = this.charts.get(key(o.code));
      if (chart && chart.resultId === result.id) {
        const cell = el("td", { colspan: 4 }, chart.node);
        rows.push(el("tr", { className: "result-history-row" }, cell));
      }
    }
    return el(
      "table",
      { className: "result-values", "data-testid": "result-values" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ["Test", "Value", "Reference range", ""].map((h) => el("th", { scope: "col", text: h })),
        ),
      ),
      el("tbody", {}, rows),
    );
  }

  renderValue(o, result) {
    const out = OUT.has(o.flag);
    const why =
      o.flag_source === "range" ? "outside the reference range" : "flagged by the laboratory";
    const flagged = out
      ? el("span", {
          className: "flag",
          "data-testid": "result-flag",
          title: `${FLAG_TEXT[o.flag]}: ${why}${o.critical ? ", critical" : ""}`,
          text: ` ${MARK[o.flag]} ${FLAG_TEXT[o.flag]}${o.critical ? " (critical)" : ""}`,
        })
      : null;
    const shown = `${o.value ?? "—"}${o.unit ? ` ${o.unit}` : ""}`;
    const history = el("button", {
      type: "button",
      className: "link",
      "data-testid": "result-history-button",
      "aria-expanded": String(this.charts.get(key(o.code))?.resultId === result.id),
      text: "History",
    });
    const row = el(
      "tr",
      {
        className: out ? "result-value out-of-range" : "result-value",
        "data-testid": "result-value",
        "data-code": o.code.code,
        "data-flag": o.flag || "",
      },
      el("th", { scope: "row", text: o.code.display }),
      el("td", {}, el("span", { className: "value", text: shown }), flagged),
      el("td", { className: "muted", text: o.range || "" }),
      el("td", {}, o.value_number !== null ? history : null),
    );
    history.addEventListener("click", () =>
      this.run(history, () => this.toggleHistory(o, result.id)),
    );
    return row;
  }

  /** Show (reading it) or hide the history of a value, under its row in that result. */
  async toggleHistory(o, resultId) {
    const id = key(o.code);
    const shown = this.charts.get(id);
    if (shown) {
      if (shown.resultId === resultId) this.charts.delete(id);
      else shown.resultId = resultId; // the same history, under another result's row
      this.onChange();
      return;
    }
    const { system, code } = o.code;
    const query = `system=${encodeURIComponent(system)}&code=${encodeURIComponent(code)}`;
    const history = await api("GET", `${this.path}/history?${query}`);
    const node = el(
      "figure",
      { className: "result-history", "data-testid": "result-history" },
      historyChart(history.points, history.code.display),
      el("figcaption", { className: "muted small", text: historyCaption(history) }),
    );
    this.charts.set(id, { resultId, node });
    this.onChange();
  }

  run(button, action) {
    button.disabled = true;
    action()
      .catch((err) => this.onError(err))
      .finally(() => {
        button.disabled = false;
      });
  }
}

function key(code) {
  return `${code.system}|${code.code}`;
}

function historyCaption(history) {
  const numbers = history.points.filter((p) => p.value_number !== null);
  const more = history.has_more ? " (the latest values)" : "";
  const count = `${numbers.length} value${numbers.length === 1 ? "" : "s"}`;
  return `${history.code.display}: ${count} over time${more}; the band is the reference range.`;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  node.append(...children.filter(Boolean));
  return node;
}

function title(text) {
  const node = svg("title");
  node.textContent = text;
  return node;
}

/**
 * A value's history as an SVG chart: time across, the value up; the latest reference range as
 * a band; each value a dot (marked when out of range) with its value and date as a tooltip.
 */
export function historyChart(points, name, { width = 360, height = 140 } = {}) {
  const numbers = points.filter((p) => p.value_number !== null);
  if (!numbers.length) return el("p", { className: "muted", text: "No numeric values to draw." });
  const pad = { left: 44, right: 12, top: 10, bottom: 24 };
  const bottom = height - pad.bottom;
  const last = numbers[numbers.length - 1];
  const values = numbers.map((p) => p.value_number);
  const bounds = [last.low, last.high].filter((v) => v !== null);
  let low = Math.min(...values, ...bounds);
  let high = Math.max(...values, ...bounds);
  if (low === high) [low, high] = [low - 1, high + 1];
  const margin = (high - low) * 0.1;
  [low, high] = [low - margin, high + margin];
  const times = numbers.map((p) => Date.parse(p.effective_at));
  const first = Math.min(...times);
  const span = Math.max(...times) - first || 1;
  const inner = width - pad.left - pad.right;
  // One value stands in the middle; more spread from the first date to the last.
  const x = (t) => pad.left + (numbers.length > 1 ? ((t - first) / span) * inner : inner / 2);
  const y = (v) => pad.top + (1 - (v - low) / (high - low)) * (height - pad.top - pad.bottom);
  const band =
    last.low !== null || last.high !== null
      ? svg("rect", {
          class: "range-band",
          x: pad.left,
          width: inner,
          y: y(last.high ?? high),
          height: Math.max(1, y(last.low ?? low) - y(last.high ?? high)),
        })
      : null;
  const at = (p, i) => [x(times[i]).toFixed(1), y(p.value_number).toFixed(1)];
  const line = svg("polyline", {
    class: "history-line",
    points: numbers.map((p, i) => at(p, i).join(",")).join(" "),
  });
  const dots = numbers.map((p, i) =>
    svg(
      "circle",
      {
        class: OUT.has(p.flag) ? "history-dot out" : "history-dot",
        cx: at(p, i)[0],
        cy: at(p, i)[1],
        r: 4,
        "data-testid": "history-point",
        "data-flag": p.flag || "",
      },
      title(pointText(p)),
    ),
  );
  const label = (text, attrs) => {
    const node = svg("text", { class: "axis-label", ...attrs });
    node.textContent = text;
    return node;
  };
  const day = (t) =>
    new Date(t).toLocaleDateString([], { year: "2-digit", month: "short", day: "numeric" });
  const said = numbers.map((p) => `${p.value} on ${day(Date.parse(p.effective_at))}`);
  return svg(
    "svg",
    {
      class: "history-chart",
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      "aria-label": `${name}: ${said.join(", ")}`,
    },
    band,
    svg("line", { class: "axis", x1: pad.left, x2: pad.left, y1: pad.top, y2: bottom }),
    svg("line", { class: "axis", x1: pad.left, x2: width - pad.right, y1: bottom, y2: bottom }),
    label(formatNumber(high - margin), { x: pad.left - 4, y: y(high - margin) + 4, ...END }),
    label(formatNumber(low + margin), { x: pad.left - 4, y: y(low + margin) + 4, ...END }),
    label(day(first), { x: pad.left, y: height - 6, "text-anchor": "start" }),
    numbers.length > 1
      ? label(day(first + span), { x: width - pad.right, y: height - 6, ...END })
      : null,
    line,
    ...dots,
  );
}

const END = { "text-anchor": "end" };

function pointText(p) {
  const flagged = OUT.has(p.flag) ? ` · ${FLAG_TEXT[p.flag]}` : "";
  return `${p.value}${p.unit ? ` ${p.unit}` : ""} · ${formatDateTime(p.effective_at)}${flagged}`;
}

function formatNumber(value) {
  return Number(value.toPrecision(4)).toString();
}
