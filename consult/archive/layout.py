"""What the archive holds and where: the record's files as entries (documents/, recordings/,
printouts/, beside the FHIR bundle), and the manifest that names each one. Pure."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from consult.fhir.codes import instant
from consult.fhir.facts import PatientFacts, RecordFacts
from consult.outcome.issued import PackageOut, ReferralOut, SickLeaveOut
from consult.outcome.printout_files import (
    PACKAGE_FILE,
    REFERRAL_FILE,
    SICK_LEAVE_FILE,
    PrintoutFile,
)
from consult.outcome.validity import clinic_day

BUNDLE: Final = "fhir-bundle.json"
MANIFEST: Final = "manifest.json"
CONTENT_TYPE: Final = "application/zip"
FHIR_JSON: Final = "application/fhir+json"
MISSING: Final = "the file is missing on the server"


@dataclass(frozen=True)
class Entry:
    """One file of the record: where it goes in the archive, its date, what the manifest says
    of it, and where its bytes come from: a stored file, or a printout made when its turn
    comes (neither: a stored file whose name is unknown, listed as missing)."""

    path: str
    at: datetime
    about: dict[str, Any]
    file: Path | None = None
    printout: tuple[PrintoutFile, int] | None = None
    transcript: int | None = None  # a consultation's id: its messages, read as they are sent


def archive_name(now: datetime) -> str:
    """The download's name: the day it was made, on the clinic's clock."""
    return f"medical-record-{clinic_day(now).isoformat()}.zip"


def entries(
    facts: RecordFacts,
    documents: dict[int, Path],
    recordings: dict[int, Path],
    transcripts: dict[int, int],
) -> list[Entry]:
    """Every file of the record: the chat transcripts (``transcripts``: the number of messages
    by consultation id, consultations without any left out), the documents (``documents``:
    their stored files by id), the ready recordings (likewise), and each issued document's
    printout."""
    return [
        *_transcripts(facts, transcripts),
        *_documents(facts, documents),
        *_recordings(facts, recordings),
        *_printouts(facts),
    ]


def _transcripts(facts: RecordFacts, counts: dict[int, int]) -> list[Entry]:
    found = []
    for visit in facts.visits:
        c = visit.consultation
        if c.id in counts:
            about = {
                "kind": "transcript",
                "consultation_id": c.id,
                "messages": counts[c.id],
                "content_type": "application/json",
                "url": f"/api/patients/{facts.patient.id}/record/{c.id}/messages",
            }
            path = f"transcripts/consultation-{c.id}.json"
            found.append(Entry(path, c.created_at, about, transcript=c.id))
    return found


def _documents(facts: RecordFacts, stored: dict[int, Path]) -> list[Entry]:
    found = []
    for shared in facts.documents:
        d = shared.document
        about = {
            "kind": "document",
            "id": d.id,
            "title": d.filename,
            "description": d.description,
            "content_type": d.content_type,
            "sha256": d.sha256,
            "created_at": instant(d.created_at),
            "consultation_ids": list(shared.consultation_ids),
            "url": d.url,
        }
        path = f"documents/{d.id}-{_safe(d.filename)}"
        found.append(Entry(path, d.created_at, about, file=stored.get(d.id)))
    return found


def _recordings(facts: RecordFacts, stored: dict[int, Path]) -> list[Entry]:
    found = []
    for r in facts.recordings:
        about = {
            "kind": "recording",
            "id": r.id,
            "consultation_id": r.consultation_id,
            "content_type": "video/webm",
            "sha256": r.sha256,
            "started_at": instant(r.started_at),
            "ended_at": instant(r.ended_at),
            "url": r.url,
        }
        path = f"recordings/consultation-{r.consultation_id}-recording-{r.id}.webm"
        found.append(Entry(path, r.started_at, about, file=stored.get(r.id)))
    return found


def _printouts(facts: RecordFacts) -> list[Entry]:
    issued: list[tuple[PrintoutFile, PackageOut | ReferralOut | SickLeaveOut]] = [
        *((PACKAGE_FILE, p) for p in facts.packages),
        *((REFERRAL_FILE, r) for r in facts.referrals),
        *((SICK_LEAVE_FILE, s) for s in facts.sick_leaves),
    ]
    found = []
    for kind, item in issued:
        about = {
            "kind": "printout",
            "of": kind.kind,
            "id": item.id,
            "consultation_id": item.consultation_id,
            "content_type": "application/pdf",
            "issued_at": instant(item.issued_at),
            "url": kind.url(item.id),
        }
        path = f"printouts/{kind.filename(item.id, item.issued_at)}"
        found.append(Entry(path, item.issued_at, about, printout=(kind, item.id)))
    return found


def bundle_about() -> dict[str, Any]:
    return {"kind": "fhir-bundle", "content_type": FHIR_JSON}


def manifest(
    patient: PatientFacts, made_at: datetime, files: list[dict[str, Any]], missing: list[Entry]
) -> bytes:
    """The archive's index: each file written (``files``: path, size and what it is) and each
    one the record names whose bytes were not there."""
    index = {
        "archive": "The whole medical record of one patient, as the server held it",
        "patient": {"id": patient.id, "name": patient.name},
        "made_at": instant(made_at),
        "fhir_bundle": BUNDLE,
        "files": files,
        "missing": [{"path": e.path, **e.about, "reason": MISSING} for e in missing],
    }
    return json.dumps(index, indent=2, ensure_ascii=False).encode() + b"\n"


def _safe(name: str) -> str:
    """A file name as one path segment: no separators, no control characters (upload names are
    checked already: this holds whatever the row says)."""
    kept = "".join(
        "_" if c in "/\\" or unicodedata.category(c)[0] == "C" else c for c in name
    ).strip()
    return kept or "file"
