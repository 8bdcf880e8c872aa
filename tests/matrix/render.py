"""The access matrix as markdown, between two markers of docs/security.md:
``scripts/access-matrix`` writes it, tests/unit/test_access_matrix.py checks it is there as
written (so the document cannot drift from the table the integration test walks)."""

from __future__ import annotations

from pathlib import Path

from tests.matrix.cells import COLUMNS, NOT_APPLICABLE, TARGETS, Cell, Kind, Row

SECURITY_MD = Path(__file__).resolve().parents[2] / "docs" / "security.md"
BEGIN = "<!-- access-matrix: begin (scripts/access-matrix writes this part) -->"
END = "<!-- access-matrix: end -->"


def cell_text(cell: Cell, row: Row) -> str:
    if cell.kind is Kind.NA:
        return "—"
    audited = " A" if cell.audited else ""
    if cell.kind is Kind.ALLOWED:
        other = f" `{cell.action}`" if cell.audited and cell.action != row.action else ""
        return f"✓{audited}{other}"
    if cell.status == 401 and cell.code == "not_authenticated":
        return "401"
    refusal = f"{cell.status} `{cell.code}`" if cell.status else f"`{cell.code}`"
    return f"(✓) {refusal}{audited}" if cell.kind is Kind.PASSES else f"{refusal}{audited}"


def render(rows: list[Row]) -> str:
    """The legend, the table and its notes."""
    out = ["**Columns** (who asks):", ""]
    out += [f"- **{c.header}**: {c.who}" for c in COLUMNS]
    out += [
        "",
        "**Cells**:",
        "",
        '- ✓ allowed (2xx; over Socket.IO an ack `{"ok": true}`);',
        "- `403 code` refused with this status and error code (an event's refusal: its "
        "code); 401 is `not_authenticated` (over Socket.IO, the connection itself is refused);",
        "- (✓) `409 code`: passes the access check, and is answered this 4xx because the test "
        "sends the call with nothing to act on (the row's note says why);",
        "- **A** leaves an audit row: an allowed row of the row's audit action (or the one the "
        "cell names) for ✓, a denied row for a refusal. Every refusal to a logged-in user is "
        "audited; one to nobody (401, and a session's 401 where a route takes another "
        "credential) is not;",
        f"- — {NOT_APPLICABLE}",
        "",
        "**Targets** (what a row's request names; the owner's data is built once, and a call "
        "that uses its target up gets a fresh one with the same ties):",
        "",
    ]
    out += [f"- `{t.key}`: {t.what}" for t in TARGETS]
    header = ["Route or event", "Target", "Audit action", *(c.header for c in COLUMNS)]
    out += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes: list[str] = []
    for row in rows:
        label = f"`{row.name}`" if not row.is_event else f"`{row.name}` (event)"
        if row.note:
            notes.append(f"{len(notes) + 1}. {label}: {row.note}")
            label += f" [{len(notes)}]"
        action = f"`{row.action}`" if row.action else "—"
        cells = [cell_text(row.cell(c.key), row) for c in COLUMNS]
        out.append("| " + " | ".join([label, f"`{row.target}`", action, *cells]) + " |")
    if notes:
        out += ["", "Notes:", "", *notes]
    return "\n".join(out) + "\n"


def spliced(document: str, rows: list[Row]) -> str:
    """``document`` with the part between the markers replaced by ``render(rows)``."""
    head, found, rest = document.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise ValueError(f"docs/security.md lacks the markers {BEGIN!r} … {END!r}")
    return f"{head}{BEGIN}\n{render(rows)}{END}{tail}"
