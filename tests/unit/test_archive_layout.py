"""The archive's layout (consult/archive/layout.py) of the demo patient's record
(tests/unit/fhir_sample.py): where each file goes, what the manifest says of it, and a file
name from the database that would leave its folder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from consult.archive import layout
from consult.fhir.facts import SharedDocument
from tests.unit.fhir_sample import NOW, sample_record


def test_every_file_of_the_record_has_its_place() -> None:
    facts = sample_record()
    stored = Path("/stored")
    entries = layout.entries(facts, {12: stored / "doc"}, {2: stored / "rec"}, {7: 42})
    transcript, *entries = entries
    assert (transcript.path, transcript.transcript) == ("transcripts/consultation-7.json", 7)
    assert transcript.about["messages"] == 42
    assert transcript.about["url"] == "/api/patients/1/record/7/messages"
    assert [(e.path, e.file, e.printout and e.printout[1]) for e in entries] == [
        ("documents/12-blood-pressure.pdf", stored / "doc", None),
        ("recordings/consultation-7-recording-2.webm", stored / "rec", None),
        ("printouts/e-prescription-2026-12-09-4.pdf", None, 4),  # the renewal's package
        ("printouts/e-prescription-2026-12-07-3.pdf", None, 3),
        ("printouts/e-referral-2026-12-07-2.pdf", None, 2),
        ("printouts/sick-leave-2026-12-07-1.pdf", None, 1),
    ]
    document = entries[0].about
    assert document["sha256"] == "cd" * 32 and document["consultation_ids"] == [7]
    assert entries[2].about["of"] == "package" and entries[2].about["consultation_id"] is None
    assert entries[5].about["url"] == "/api/sick-leaves/1/printout.pdf"
    assert layout.archive_name(NOW) == "medical-record-2026-12-20.zip"


def test_a_stored_file_without_its_name_and_the_manifest_lists_it_missing() -> None:
    facts = sample_record()
    (document, *_) = layout.entries(facts, {}, {}, {})
    assert document.file is None and document.printout is None
    written = [{"path": layout.BUNDLE, **layout.bundle_about(), "size": 10}]
    index = json.loads(layout.manifest(facts.patient, NOW, written, [document]))
    assert index["patient"] == {"id": 1, "name": "Anna Kowalska"}  # no PESEL beside it
    assert index["files"] == written
    (missing,) = index["missing"]
    assert (missing["path"], missing["reason"]) == (document.path, layout.MISSING)


def test_a_file_name_never_leaves_its_folder() -> None:
    facts = sample_record()
    shared = facts.documents[0]
    hostile = shared.document.model_copy(update={"filename": "../../etc/pass\\wd\x00.pdf"})
    facts = dataclasses.replace(facts, documents=[SharedDocument(hostile, ())])
    (entry, *_) = layout.entries(facts, {}, {}, {})
    assert entry.path == "documents/12-.._.._etc_pass_wd_.pdf"
