"""Download everything (GET /api/patients/me/archive), on each backend:

- the patient's archive holds the FHIR bundle, every document, ready recording and printout of
  an issued document, byte for byte, and a manifest naming each file (one whose file is gone
  is listed as missing); the read is one audit row;
- a doctor is refused (audited), an anonymous caller too, and a fourth archive in a row is
  rate-limited (its own bucket: the other clinical reads go on);
- memory stays flat: a real ``consult serve`` process streams a record of 100 MB of files
  while the test reads its peak resident memory (VmHWM, reset just before the download, so
  the kernel records the highest point however short); that counts everything the process
  holds (Python objects, C buffers, threads' arenas), which an in-process tracemalloc peak
  would not (it sees Python's allocations only, and the test client's beside the server's).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from consult.storage import tables as t
from tests.integration.test_fhir import SAID, valid, visit_with_outcome
from tests.integration.test_outcome import today_of
from tests.support import ApiClient, Server, demo_server, rows

_A = t.audit_log.c
ARCHIVE = "/api/patients/me/archive"
MB = 1024 * 1024


async def get(client: ApiClient, path: str) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {client.token}"} if client.token else {}
    async with client.session.get(client.base_url + path, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


async def add_recording(
    database_url: str, folder: Path, consultation_id: int, content: bytes | None
) -> int:
    """A ready recording of the consultation, its file in ``folder`` (none: the file is gone)."""
    name = f"{consultation_id}-{secrets.token_hex(12)}.webm"
    if content is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    at = datetime.now(UTC) - timedelta(minutes=30)
    data = content or b""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            found = await conn.execute(
                t.recordings.insert()
                .values(
                    consultation_id=consultation_id,
                    stored_name=name,
                    status="ready",
                    started_at=at,
                    ended_at=at + timedelta(minutes=5),
                    size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                )
                .returning(t.recordings.c.id)
            )
            return int(found.scalar_one())
    finally:
        await engine.dispose()


async def test_the_archive_holds_the_bundle_and_every_file_byte_for_byte(
    api, sockets, clock, database_url, tmp_path
):
    patient, doctor, out = await visit_with_outcome(api, sockets, clock)
    cid = out["consultation_id"]
    video = os.urandom(300_000)
    recording = await add_recording(database_url, tmp_path / "recordings", cid, video)
    gone = await add_recording(database_url, tmp_path / "recordings", cid, None)
    reads_before = await rows(database_url, t.audit_log, _A.actor_id == patient.user["id"])

    status, headers, body = await get(patient, ARCHIVE)
    assert status == 200, body
    assert headers["Content-Type"] == "application/zip"
    name = f"medical-record-{today_of(clock).isoformat()}.zip"
    assert headers["Content-Disposition"].startswith(f'attachment; filename="{name}"')
    assert headers["Cache-Control"] == "private, no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Length" not in headers  # streamed as it is made
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None  # every entry's CRC-32

    # What the archive's read wrote: one row, and no row of the FHIR or printout reads.
    new = (await rows(database_url, t.audit_log, _A.actor_id == patient.user["id"]))[
        len(reads_before) :
    ]
    assert [(r.action, r.patient_id, r.allowed) for r in new] == [
        ("record.archive.read", patient.user["id"], True)
    ]
    assert new[0].detail == "8 files and the FHIR bundle"

    # The bundle is the record's FHIR export.
    bundle = json.loads(archive.read("fhir-bundle.json"))
    assert bundle["entry"] == json.loads(await read(patient, "/api/patients/me/fhir"))["entry"]
    valid(bundle)

    manifest = json.loads(archive.read("manifest.json"))
    files = {f["path"]: f for f in manifest["files"]}
    document = out["document"]
    package = out["packages"][0]
    expected = {
        "fhir-bundle.json",
        f"documents/{document['id']}-ecg.pdf",
        f"recordings/consultation-{cid}-recording-{recording}.webm",
    }
    assert expected <= set(files)
    assert set(files) | {"manifest.json"} == set(archive.namelist())
    assert manifest["patient"] == {"id": patient.user["id"], "name": patient.user["name"]}
    # Every file named, its size the entry's.
    for path, listed in files.items():
        assert archive.getinfo(path).file_size == listed["size"], path
    assert archive.read(f"documents/{document['id']}-ecg.pdf") == await read(
        patient, document["url"]
    )
    assert files[f"documents/{document['id']}-ecg.pdf"]["sha256"] == document["sha256"]
    assert archive.read(f"recordings/consultation-{cid}-recording-{recording}.webm") == video
    # The recording whose file is gone: listed as missing, the rest is whole.
    (missing,) = manifest["missing"]
    assert (missing["kind"], missing["id"]) == ("recording", gone)

    # The consultation's chat transcript: every message, as the record's transcript route
    # gives them (the shared document's message and the two below).
    path = f"transcripts/consultation-{cid}.json"
    transcript = json.loads(archive.read(path))
    route = f"/api/patients/{patient.user['id']}/record/{cid}/messages"
    assert transcript == {
        "consultation_id": cid,
        "messages": json.loads(await read(patient, route))["messages"],
    }
    assert [m["body"] for m in transcript["messages"]][-2:] == [SAID, "Take care."]
    assert files[path]["messages"] == len(transcript["messages"])
    assert archive.getinfo(path).compress_type == zipfile.ZIP_DEFLATED

    # Each issued document's printout, the same bytes as its own route gives.
    printouts = [f for f in manifest["files"] if f["kind"] == "printout"]
    issued: dict[str, list[int]] = {}
    for printout in printouts:
        issued.setdefault(printout["of"], []).append(printout["id"])
    # Both packages (the renewal's too), the referral, the sick leave.
    assert len(issued["package"]) == 2 and package["id"] in issued["package"]
    assert issued["referral"] == [out["referrals"][0]["id"]]
    assert issued["sick_leave"] == [out["sick_leave"]["id"]]
    for printout in printouts:
        assert printout["path"].startswith("printouts/") and printout["path"].endswith(".pdf")
        assert archive.read(printout["path"]) == await read(patient, printout["url"])
        assert archive.getinfo(printout["path"]).compress_type == zipfile.ZIP_STORED
    assert archive.getinfo("manifest.json").compress_type == zipfile.ZIP_DEFLATED


async def read(client: ApiClient, path: str) -> bytes:
    status, _, body = await get(client, path)
    assert status == 200, body
    return body


async def test_only_patients_get_an_archive_and_a_fourth_in_a_row_waits(api, database_url):
    anna = await api("anna@demo.test")
    house = await api("dr.house@demo.test")
    anonymous = await api()

    status, _, body = await get(house, ARCHIVE)
    assert status == 403 and json.loads(body)["error"]["code"] == "not_a_patient"
    status, _, body = await get(anonymous, ARCHIVE)
    assert status == 401 and json.loads(body)["error"]["code"] == "not_authenticated"
    denied = await rows(database_url, t.audit_log, _A.actor_id == house.user["id"], ~_A.allowed)
    assert [(r.action, r.allowed, r.detail) for r in denied] == [
        ("record.archive.read", False, "not a patient")
    ]

    # Three in a row (CONSULT_ARCHIVE_BURST), then one every ten minutes.
    for _ in range(3):
        status, _, body = await get(anna, ARCHIVE)
        assert status == 200
        assert zipfile.ZipFile(io.BytesIO(body)).namelist() == ["fhir-bundle.json", "manifest.json"]
    status, headers, body = await get(anna, ARCHIVE)
    error = json.loads(body)["error"]
    assert status == 429 and error["code"] == "rate_limited"
    assert 590 <= error["retry_after"] <= 600 and 590 <= int(headers["Retry-After"]) <= 600
    assert "at most 6 an hour (bursts of 3)" in error["message"]
    # The archive's own bucket: the other clinical reads are not held up.
    assert (await get(anna, "/api/patients/me/fhir"))[0] == 200
    mine = await rows(database_url, t.audit_log, _A.actor_id == anna.user["id"])
    assert [(r.action, r.allowed) for r in mine if r.action != "session.login"] == [
        ("record.archive.read", True),
        ("record.archive.read", True),
        ("record.archive.read", True),
        ("refused", False),
        ("record.fhir.read", True),
    ]
    assert mine[-2].detail == "429 rate_limited: GET /api/patients/me/archive"


# --- memory: a real server process streams 100 MB ------------------------------------------


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[Server, Path, Path]]:
    """``consult serve --demo`` of this tree on the test's database, its documents and
    recordings in the test's folder."""
    documents, recordings = tmp_path / "documents", tmp_path / "recordings"
    settings = {
        "CONSULT_DOCUMENTS_DIR": str(documents),
        "CONSULT_RECORDINGS_DIR": str(recordings),
        "CONSULT_SLOT_DAYS": "0",
    }
    with demo_server(tmp_path, database_url=database_url, settings=settings) as server:
        yield server, documents, recordings


class Record:
    """Files put straight into a patient's record: rows in the database, bytes in the
    folders; each one's path in the archive and SHA-256."""

    def __init__(self, database_url: str, documents: Path, recordings: Path) -> None:
        self.database_url = database_url
        self.documents = documents
        self.recordings = recordings
        self.expected: dict[str, str] = {}

    async def add(self, patient_id: int, doctor_id: int, documents: int, recordings: int) -> None:
        """Documents of ``documents`` bytes each (five) and recordings of ``recordings`` bytes
        each (three), in a finished consultation of the patient's."""
        now = datetime.now(UTC) - timedelta(hours=1)
        engine = create_async_engine(self.database_url)
        try:
            async with engine.begin() as conn:
                cid = await insert(
                    conn,
                    t.consultations,
                    patient_id=patient_id,
                    doctor_id=doctor_id,
                    specialty_code="internal-medicine",
                    form="video",
                    status="ended",
                    created_at=now,
                    started_at=now,
                    ended_at=now + timedelta(minutes=20),
                )
                for n in range(5):
                    name, digest = self._write(self.documents, secrets.token_hex(16), documents)
                    did = await insert(
                        conn,
                        t.documents,
                        patient_id=patient_id,
                        stored_name=name,
                        filename=f"scan {n}.pdf",
                        description="A long scan",
                        content_type="application/pdf",
                        size=documents,
                        sha256=digest,
                        created_at=now,
                    )
                    self.expected[f"documents/{did}-scan {n}.pdf"] = digest
                for _ in range(3):
                    name = f"{cid}-{secrets.token_hex(12)}.webm"
                    name, digest = self._write(self.recordings, name, recordings)
                    rid = await insert(
                        conn,
                        t.recordings,
                        consultation_id=cid,
                        stored_name=name,
                        status="ready",
                        started_at=now,
                        ended_at=now + timedelta(minutes=20),
                        size=recordings,
                        sha256=digest,
                    )
                    self.expected[f"recordings/consultation-{cid}-recording-{rid}.webm"] = digest
        finally:
            await engine.dispose()

    @staticmethod
    def _write(folder: Path, name: str, size: int) -> tuple[str, str]:
        folder.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)  # incompressible, as media are
        (folder / name).write_bytes(data)
        return name, hashlib.sha256(data).hexdigest()


async def insert(conn: Any, table: sa.Table, **values: Any) -> int:
    return int(
        (await conn.execute(table.insert().values(**values).returning(table.c.id))).scalar_one()
    )


def memory_kib(pid: int) -> dict[str, int]:
    """The process's resident memory now (VmRSS) and at its highest (VmHWM), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {
        line.split(":")[0]: int(line.split()[1])
        for line in status.splitlines()
        if line.startswith(("VmRSS:", "VmHWM:"))
    }


async def download(client: ApiClient, target: Path) -> None:
    headers = {"Authorization": f"Bearer {client.token}"}
    async with client.session.get(client.base_url + ARCHIVE, headers=headers) as response:
        assert response.status == 200, await response.text()
        with target.open("wb") as out:
            async for chunk in response.content.iter_chunked(MB):
                out.write(chunk)


async def test_memory_stays_flat_while_100_mb_of_files_stream(served, database_url, tmp_path):
    server, documents, recordings = served
    anna = await ApiClient(server.url).login("anna@demo.test")
    house = await ApiClient(server.url).login("dr.house@demo.test")
    try:
        record = Record(database_url, documents, recordings)
        pid = server.process.pid
        # A small record first: the first archive loads what every archive uses (zipfile, the
        # worker threads, the FHIR mapping), which is not memory that grows with the archive.
        await record.add(anna.user["id"], house.user["id"], 100_000, 100_000)
        await download(anna, tmp_path / "warm-up.zip")

        await record.add(anna.user["id"], house.user["id"], 8 * MB, 20 * MB)  # 5 × 8 + 3 × 20
        before = memory_kib(pid)["VmRSS"]
        # Reset the peak to now: VmHWM then records the highest point of the download.
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        target = tmp_path / "record.zip"
        await download(anna, target)
        peak = memory_kib(pid)["VmHWM"]
    finally:
        await anna.close()
        await house.close()

    size = target.stat().st_size
    assert size > 100 * MB
    growth = (peak - before) * 1024
    print(
        f"archive {size / MB:.1f} MB; server RSS {before / 1024:.1f} MB, peak +{growth / MB:.1f} MB"
    )
    # Streamed, the peak is the chunks in flight (about 2 MB here); a server that read a file
    # whole would grow by its size (20 MB), one that held the archive by all of it (100 MB).
    assert growth < 16 * MB, f"the server's memory grew by {growth / MB:.1f} MB"

    # The archive is whole: every file's bytes, and the manifest names each.
    with zipfile.ZipFile(target) as archive:
        found = {}
        for name in record.expected:
            digest = hashlib.sha256()
            with archive.open(name) as entry:  # the CRC-32 is checked as it is read
                while chunk := entry.read(MB):
                    digest.update(chunk)
            found[name] = digest.hexdigest()
        assert found == record.expected
        manifest = json.loads(archive.read("manifest.json"))
    assert {f["path"] for f in manifest["files"]} == {"fhir-bundle.json", *record.expected}
    assert manifest["missing"] == []
