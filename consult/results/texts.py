"""What the intake reads out of FHIR elements: a CodeableConcept as consult keeps it, a date
or time as an instant, a text within its column's length. Pure; problems go to ``Issues``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from consult.clock import as_utc
from consult.results.drafts import Coded
from consult.results.issues import Issues

MAX_SYSTEM = 200
MAX_CODE = 64
MAX_DISPLAY = 300


def text(value: str | None, longest: int, at: str, found: Issues) -> str | None:
    """The text, stripped; refused (not cut) when longer than its column: clinical text is
    stored whole or not at all."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > longest:
        found.add("too-costly", f"at most {longest} characters (this is {len(value)})", at)
    return value


def coded(concept: Any, at: str, found: Issues, *, need_code: bool) -> Coded | None:
    """A CodeableConcept's first coding (with a system and a code, when ``need_code``) and its
    name: the text, else that coding's display, else its code."""
    if concept is None:
        return None
    codings = concept.coding or []
    first = next((c for c in codings if c.system and c.code), codings[0] if codings else None)
    if need_code and (first is None or not (first.system and first.code)):
        found.add(
            "required",
            "a coding with a system and a code is needed (a value's history is kept by code)",
            f"{at}.coding",
        )
    system = first.system if first else None
    code = first.code if first else None
    name = concept.text or (first.display if first else None) or code
    if not name:
        found.add("required", "a name is needed: text, or a coding's display or code", at)
    return Coded(
        text(system, MAX_SYSTEM, f"{at}.coding[0].system", found),
        text(code, MAX_CODE, f"{at}.coding[0].code", found),
        text(name, MAX_DISPLAY, at, found) or "?",
    )


def instant(value: datetime | date | str | None) -> datetime | None:
    """A FHIR date or dateTime as an instant in UTC. A date alone (or a year, or a year and
    month) is its first day's midnight, UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else as_utc(value)
    if isinstance(value, date):
        return datetime.combine(value, time(), UTC)
    parts = [int(p) for p in value.split("-")] + [1, 1]
    return datetime(parts[0], parts[1], parts[2], tzinfo=UTC)
