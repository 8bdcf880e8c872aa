"""The access history's classification of audit actions (consult/records/access_actions.py):
every action the server writes is listed on purpose or left out on purpose, so a new read of
a patient's data cannot go missing from "who saw my data" unnoticed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import consult
from consult.records.access_actions import LISTED, NOT_LISTED, READ, what
from consult.storage import tables as t

ROOT = Path(consult.__file__).parent
# What an audit action looks like: dotted lower-case words ("call.recording.read").
_ACTION = re.compile(r"[a-z]+(?:_[a-z]+)*(?:\.[a-z]+(?:_[a-z]+)*)+")
# Dotted strings in the source that are no action: logger names (consult.*), foreign keys
# ("users.id": a table's name first), the WSGI environ's keys and file names.
_NOT_ACTIONS = {"aiohttp.request", "aiohttp.server", "index.html", "manifest.json"}


def actions_in_source() -> dict[str, set[str]]:
    tables = set(t.metadata.tables)
    found: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            value = node.value
            if not _ACTION.fullmatch(value) or value in _NOT_ACTIONS:
                continue
            if value.startswith("consult.") or value.split(".")[0] in tables:
                continue
            found.setdefault(value, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_audit_action_is_listed_or_left_out_on_purpose():
    found = actions_in_source()
    unclassified = {a: found[a] for a in sorted(set(found) - set(LISTED) - NOT_LISTED)}
    assert not unclassified, f"classify these in access_actions.py: {unclassified}"
    assert not set(LISTED) & NOT_LISTED
    # Nothing classified that the server no longer writes ("refused" has no dot).
    assert (set(LISTED) | NOT_LISTED) - set(found) == {"refused"}
    assert READ in NOT_LISTED


def test_each_listed_access_reads_as_words():
    assert what("record.read", None, None) == "record read"
    assert what("record.read", None, 12) == "transcript read"
    assert what("record.fhir.read", None, None) == "FHIR export"
    assert what("record.fhir.read", "MedicationRequest?status=active", None) == (
        "prescriptions read (FHIR search)"
    )
    assert what("outcome.printout.read", "package 3", 1) == "prescription printout"
    assert what("outcome.printout.read", "referral 3", 1) == "referral printout"
    assert what("outcome.printout.read", "sick leave 3", 1) == "sick leave printout"
    assert what("booking.read", None, None) == "bookings read"
    assert what("booking.read", "booking 4", None) == "booking's calendar file downloaded"
    assert what("call.recording.read", "recording 2", 1) == "recording played"
    assert all(words and words == words.strip() for words in LISTED.values())
