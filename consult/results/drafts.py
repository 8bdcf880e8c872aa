"""A result as the intake read it from a bundle (intake.py), before it is stored: plain data,
shared by the intake, the repository and the demo's seeding."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Coded:
    """A coding as consult keeps it: the first coding's system and code (either may be missing
    on a report's code or category) and what to call it."""

    system: str | None
    code: str | None
    display: str


@dataclass(frozen=True)
class ObservationDraft:
    code: Coded
    status: str
    value_kind: str  # result_tables.VALUE_KINDS
    value_number: float | None = None
    value_text: str | None = None
    comparator: str | None = None
    unit: str | None = None
    low: float | None = None
    high: float | None = None
    range_text: str | None = None
    interpretation: str | None = None
    effective_at: datetime | None = None  # None: the report's


@dataclass(frozen=True)
class ReportDraft:
    identifier_system: str
    identifier_value: str
    status: str
    code: Coded
    effective_at: datetime
    category: Coded | None = None
    issued_at: datetime | None = None
    performer: str | None = None
    conclusion: str | None = None
    observations: tuple[ObservationDraft, ...] = ()
    pdf: bytes | None = field(default=None, repr=False)

    def fingerprint(self) -> str:
        """SHA-256 of everything stored (the PDF by its own SHA-256): the same report sent
        again has the same fingerprint."""
        described: dict[str, Any] = asdict(self)
        described["pdf"] = hashlib.sha256(self.pdf).hexdigest() if self.pdf is not None else None
        text = json.dumps(described, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Submission:
    """What one bundle delivers: the report, the patient's PESEL and where it was read, and
    what each of the bundle's entries was (for the answer, entry by entry)."""

    report: ReportDraft
    pesel: str
    pesel_at: str  # the expression the PESEL was read from
    pdf_at: str | None = None  # the expression of the PDF, when there is one
    # Per entry of the bundle: "report", an Observation's position among the report's, or
    # "other" (read for names, not stored).
    entries: tuple[str | int, ...] = ()
