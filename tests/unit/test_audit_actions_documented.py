"""Every audit action the code writes has a row in docs/architecture.md's table of actions: an
operator reading the audit log finds what each row means."""

from __future__ import annotations

import re
from pathlib import Path

from consult.records import access_actions

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def _documented() -> set[str]:
    text = ARCHITECTURE.read_text()
    start = text.index("| Action | Allowed entries | Denied entries |")
    table = text[start : text.index("\n\n", start)]
    return {
        name
        for line in table.splitlines()
        for name in re.findall(r"`([a-z_.]+)`", line.split("|")[1])
    }


def test_every_audit_action_is_in_the_architecture_table() -> None:
    # access_actions classifies every action string in the source (its own test checks that).
    actions = set(access_actions.LISTED) | set(access_actions.NOT_LISTED)
    assert actions - _documented() == set()
