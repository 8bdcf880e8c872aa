"""Medical documents over real HTTP (and Socket.IO for sharing and live updates), on each
backend: uploads judged by content and refused without a trace, limits, access only for the
owner and the consulting doctor, audit, deletion, sharing into the chat, and the live events of
an upload or a deletion, told to the patient and her doctor only."""

from __future__ import annotations

import asyncio
import hashlib
import io
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pikepdf
import pytest

from consult.documents.rules import MAX_SIZE
from consult.storage import tables as t
from tests.support import ApiClient, jpeg, pdf, png, rows, start_and_accept

JPEG = jpeg()
PDF = pdf()


def pdf_of_size(size: int) -> bytes:
    return pdf(size)


@pytest.fixture
def documents_dir(tmp_path: Path) -> Path:
    """Where the ``server`` fixture (integration/conftest.py) stores documents."""
    return tmp_path / "documents"


def files_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


async def upload(
    client: ApiClient,
    content: bytes,
    filename: str = "scan.pdf",
    description: str | None = "Blood test results, March",
    *,
    expect: int = 201,
) -> Any:
    form = aiohttp.FormData()
    if description is not None:
        form.add_field("description", description)
    form.add_field("file", content, filename=filename, content_type="application/octet-stream")
    return await client.call("POST", "/api/documents", data=form, expect=expect)


async def upload_status(client: ApiClient, content: bytes, filename: str) -> int:
    form = aiohttp.FormData()
    form.add_field("description", "concurrent")
    form.add_field("file", content, filename=filename)
    async with client.session.post(
        client.base_url + "/api/documents",
        data=form,
        headers={"Authorization": f"Bearer {client.token}"},
    ) as response:
        return response.status


async def raw_upload(client: ApiClient, body: bytes, boundary: str = "b0undary") -> tuple[int, Any]:
    """A hand-written multipart body: for names no well-behaved client library would send."""
    headers = {
        "Authorization": f"Bearer {client.token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    async with client.session.post(
        client.base_url + "/api/documents", data=body, headers=headers
    ) as response:
        return response.status, await response.json()


def multipart(disposition: str, content: bytes, boundary: str = "b0undary") -> bytes:
    return (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="description"\r\n\r\n'
            f"A scan\r\n--{boundary}\r\n"
            f"Content-Disposition: {disposition}\r\n"
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )


# --- uploading ------------------------------------------------------------------------------


async def test_a_patient_uploads_lists_and_downloads_their_documents(
    api, database_url, documents_dir
):
    anna = await api("anna@demo.test")
    cases = [
        (JPEG, "photo.JPG", "image/jpeg"),
        (png(), "rash.png", "image/png"),
        (PDF, "Wyniki badań.pdf", "application/pdf"),
    ]
    uploaded = []
    for content, name, kind in cases:
        doc = await upload(anna, content, name, f"About {name}")
        assert doc["content_type"] == kind and doc["filename"] == name
        assert doc["size"] == len(content)
        assert doc["sha256"] == hashlib.sha256(content).hexdigest()
        assert doc["description"] == f"About {name}"
        uploaded.append(doc)

    listed = await anna.call("GET", "/api/documents")
    assert [d["id"] for d in listed["documents"]] == [d["id"] for d in uploaded]
    assert listed["max_files"] == 5 and listed["max_size"] == MAX_SIZE

    # Stored under generated names, outside web/, with the content as sent.
    stored = files_in(documents_dir)
    assert len(stored) == 3
    assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in stored} == {
        d["sha256"] for d in uploaded
    }
    assert not any(name in p.name for p in stored for _, name, _ in cases)

    for (content, name, kind), doc in zip(cases, uploaded, strict=True):
        async with anna.session.get(
            anna.base_url + doc["url"], headers={"Authorization": f"Bearer {anna.token}"}
        ) as response:
            assert response.status == 200
            assert await response.read() == content
            assert response.headers["Content-Type"] == kind
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            disposition = response.headers["Content-Disposition"]
            assert disposition.startswith("attachment;")
            assert response.content_disposition is not None
            assert response.content_disposition.filename == name

    audit = [(r.action, r.allowed) for r in await rows(database_url, t.audit_log)]
    assert audit.count(("document.upload", True)) == 3
    assert audit.count(("document.read", True)) == 3
    assert ("document.list", True) in audit


async def test_a_pdf_named_png_is_stored_as_a_pdf(api):
    anna = await api("anna@demo.test")
    doc = await upload(anna, PDF, "scan.png")
    assert doc["content_type"] == "application/pdf"
    assert doc["filename"] == "scan.png.pdf"


HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(1)</script></svg>"
)
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 512
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 512


@pytest.mark.parametrize(
    ("content", "filename"),
    [
        pytest.param(EXE, "results.pdf", id="renamed-windows-executable"),
        pytest.param(ELF, "xray.jpg", id="renamed-elf-executable"),
        pytest.param(HTML, "scan.png", id="html-named-png"),
        pytest.param(SVG, "scan.png", id="svg-named-png"),
        pytest.param(pdf_of_size(5000)[:3000], "results.pdf", id="truncated-pdf"),
        pytest.param(png()[:-12], "rash.png", id="truncated-png"),
        pytest.param(b"", "empty.pdf", id="empty-file"),
    ],
)
async def test_a_file_that_is_not_a_whole_jpeg_png_or_pdf_is_refused_without_a_trace(
    api, database_url, documents_dir, content, filename
):
    anna = await api("anna@demo.test")
    body = await upload(anna, content, filename, expect=415)
    assert body["error"]["code"] == "unsupported_file_type"
    assert "JPEG, PNG and PDF" in body["error"]["message"]
    assert files_in(documents_dir) == []
    assert await rows(database_url, t.documents) == []
    assert (await anna.call("GET", "/api/documents"))["documents"] == []


def png_declaring(width: int, height: int) -> bytes:
    """A small, well-formed PNG whose header declares ``width`` x ``height`` pixels."""
    whole = png()
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    header = struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    return whole[:8] + header + whole[33:]


def pdf_with(build: Callable[[pikepdf.Pdf], None]) -> bytes:
    document = pikepdf.new()
    document.add_blank_page()
    build(document)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def open_action_javascript(document: pikepdf.Pdf) -> None:
    document.Root.OpenAction = pikepdf.Dictionary(
        S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert('hello')")
    )


def launch_on_page_open(document: pikepdf.Pdf) -> None:
    action = pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("/bin/sh"))
    document.pages[0].obj.AA = pikepdf.Dictionary(O=document.make_indirect(action))


def embedded_file(document: pikepdf.Pdf) -> None:
    document.attachments["payload.exe"] = pikepdf.AttachedFileSpec(document, b"MZ" + b"\0" * 64)


def corrupt_crc(data: bytes) -> bytes:
    """The PNG with its image data's checksum broken."""
    at = data.index(b"IEND") - 8  # the last byte of the IDAT chunk's CRC
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("content", "filename", "status", "code"),
    [
        pytest.param(
            png_declaring(50_000, 50_000), "xray.png", 413, "image_too_large", id="png-bomb"
        ),
        pytest.param(
            png_declaring(10_000, 5_001), "xray.png", 413, "image_too_large", id="png-over-limit"
        ),
        pytest.param(
            corrupt_crc(png(64, 64)), "rash.png", 422, "unreadable_document", id="png-crc"
        ),
        pytest.param(
            pdf_with(open_action_javascript),
            "results.pdf",
            422,
            "document_active_content",
            id="pdf-openaction-javascript",
        ),
        pytest.param(
            pdf_with(launch_on_page_open),
            "results.pdf",
            422,
            "document_active_content",
            id="pdf-launch-action",
        ),
        pytest.param(
            pdf_with(embedded_file),
            "results.pdf",
            422,
            "document_active_content",
            id="pdf-embedded-file",
        ),
        pytest.param(
            b"%PDF-1.7\n" + ELF + b"\n%%EOF\n",
            "results.pdf",
            422,
            "unreadable_document",
            id="elf-wrapped-as-pdf",
        ),
    ],
)
async def test_hostile_files_that_pass_size_and_type_are_refused_without_a_trace(
    api, database_url, documents_dir, content, filename, status, code
):
    anna = await api("anna@demo.test")
    body = await upload(anna, content, filename, expect=status)
    assert body["error"]["code"] == code
    assert files_in(documents_dir) == []
    assert await rows(database_url, t.documents) == []
    assert (await anna.call("GET", "/api/documents"))["documents"] == []


async def test_an_image_at_the_pixel_limit_is_accepted(api):
    anna = await api("anna@demo.test")
    doc = await upload(anna, png_declaring(10_000, 5_000), "xray.png")
    assert doc["content_type"] == "image/png"


async def test_eight_megabytes_pass_and_one_byte_more_is_refused(api, database_url, documents_dir):
    anna = await api("anna@demo.test")
    too_big = await upload(anna, pdf_of_size(MAX_SIZE + 1), expect=413)
    assert too_big["error"]["code"] == "file_too_large"
    assert "8 MB" in too_big["error"]["message"]
    assert files_in(documents_dir) == []
    assert await rows(database_url, t.documents) == []

    # Exactly 8 MB is accepted, although the app refuses other bodies above 1 MB.
    doc = await upload(anna, pdf_of_size(MAX_SIZE))
    assert doc["size"] == MAX_SIZE
    assert [p.stat().st_size for p in files_in(documents_dir)] == [MAX_SIZE]


async def test_an_oversized_upload_is_refused_before_the_client_has_finished_sending(
    api, documents_dir
):
    """The server answers 413 while the client still holds the rest of the body back: it
    stopped reading at the limit instead of buffering the whole upload."""
    anna = await api("anna@demo.test")
    boundary = "l1m1t"
    release = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\n'
            f"Big scan\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode() + PDF[:9]
        block = b"%" + b"x" * (1024 * 1024 - 1)
        for _ in range(9):  # 9 MB: past the limit
            yield block
        await asyncio.wait_for(release.wait(), 30)  # the rest is never sent before the answer
        yield PDF[9:] + f"\r\n--{boundary}--\r\n".encode()

    headers = {
        "Authorization": f"Bearer {anna.token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    # The answer must come while the body is still held back: a server that buffered the
    # whole upload would wait for the rest, and this times out.
    async with asyncio.timeout(10):
        async with anna.session.post(
            anna.base_url + "/api/documents", data=body(), headers=headers
        ) as response:
            status = response.status
            answer = await response.json()
    release.set()
    assert status == 413 and answer["error"]["code"] == "file_too_large"
    assert files_in(documents_dir) == []


async def test_the_sixth_document_is_refused_until_one_is_deleted(api, database_url, documents_dir):
    anna = await api("anna@demo.test")
    ids = [(await upload(anna, PDF, f"doc{i}.pdf"))["id"] for i in range(5)]
    sixth = await upload(anna, JPEG, "sixth.jpg", expect=429)
    assert sixth["error"]["code"] == "too_many_documents"
    assert "at most 5" in sixth["error"]["message"]
    assert len(files_in(documents_dir)) == 5
    assert len(await rows(database_url, t.documents)) == 5

    await anna.call("DELETE", f"/api/documents/{ids[0]}", expect=204)
    assert len(files_in(documents_dir)) == 4
    await upload(anna, JPEG, "sixth.jpg")
    assert len((await anna.call("GET", "/api/documents"))["documents"]) == 5
    # Another patient's limit is their own.
    await upload(await api("piotr@demo.test"), PDF)


async def test_concurrent_uploads_never_pass_the_limit(api, database_url, documents_dir):
    anna = await api("anna@demo.test")
    for i in range(3):
        await upload(anna, PDF, f"doc{i}.pdf")
    statuses = await asyncio.gather(*(upload_status(anna, PDF, f"more{i}.pdf") for i in range(4)))
    assert sorted(statuses) == [201, 201, 429, 429]
    assert len(files_in(documents_dir)) == 5
    assert len(await rows(database_url, t.documents)) == 5


@pytest.mark.parametrize(
    "disposition",
    [
        pytest.param('form-data; name="file"; filename="../../etc/passwd.pdf"', id="dot-dot-slash"),
        pytest.param('form-data; name="file"; filename="/tmp/x.pdf"', id="absolute-path"),
        pytest.param('form-data; name="file"; filename="..\\\\win.pdf"', id="backslash"),
        pytest.param(
            "form-data; name=\"file\"; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd.pdf",
            id="encoded-dot-dot-slash",
        ),
        pytest.param(
            "form-data; name=\"file\"; filename*=UTF-8''scan.pdf%00.png", id="encoded-nul"
        ),
        pytest.param('form-data; name="file"; filename="scan.pdf\x00.png"', id="raw-nul"),
    ],
)
async def test_a_filename_with_a_path_or_a_nul_byte_is_refused(
    api, database_url, documents_dir, disposition
):
    anna = await api("anna@demo.test")
    status, body = await raw_upload(anna, multipart(disposition, PDF))
    assert status == 400, body
    assert body["error"]["code"] in ("invalid_filename", "malformed_multipart")
    assert files_in(documents_dir) == []
    assert await rows(database_url, t.documents) == []


async def test_the_description_is_required_and_limited(api, database_url, documents_dir):
    anna = await api("anna@demo.test")
    missing = await upload(anna, PDF, description=None, expect=400)
    assert missing["error"]["code"] == "description_required"
    blank = await upload(anna, PDF, description="   ", expect=400)
    assert blank["error"]["code"] == "description_required"
    long = await upload(anna, PDF, description="x" * 501, expect=400)
    assert long["error"]["code"] == "description_too_long"
    nul = await upload(anna, PDF, description="rash\x00", expect=400)
    assert nul["error"]["code"] == "invalid_description"
    assert files_in(documents_dir) == []
    assert await rows(database_url, t.documents) == []
    # 500 characters (here of two bytes each in UTF-8) are fine; it may come after the file.
    form = aiohttp.FormData()
    form.add_field("file", PDF, filename="scan.pdf")
    form.add_field("description", "ż" * 500)
    doc = await anna.call("POST", "/api/documents", data=form, expect=201)
    assert doc["description"] == "ż" * 500


async def test_who_may_not_upload_and_bad_requests(api, documents_dir):
    basia = await api("basia@demo.test")  # basic identity
    assert (await upload(basia, PDF, expect=403))["error"]["code"] == "identity_not_verified"
    doctor = await api("dr.house@demo.test")
    assert (await upload(doctor, PDF, expect=403))["error"]["code"] == "not_a_patient"
    anonymous = await api()
    await upload(anonymous, PDF, expect=401)
    anna = await api("anna@demo.test")
    as_json = await anna.call("POST", "/api/documents", {"file": "x"}, expect=400)
    assert as_json["error"]["code"] == "multipart_required"
    no_file = aiohttp.FormData(default_to_multipart=True)
    no_file.add_field("description", "only words")
    no_file.add_field("extra", "x")
    body = await anna.call("POST", "/api/documents", data=no_file, expect=400)
    assert body["error"]["code"] == "unexpected_field"
    only_words = aiohttp.FormData(default_to_multipart=True)
    only_words.add_field("description", "only words")
    body = await anna.call("POST", "/api/documents", data=only_words, expect=400)
    assert body["error"]["code"] == "file_required"
    assert files_in(documents_dir) == []


# --- access -----------------------------------------------------------------------------------


async def get_content(client: ApiClient, url: str) -> tuple[int, bytes, Any]:
    async with client.session.get(
        client.base_url + url, headers={"Authorization": f"Bearer {client.token}"}
    ) as response:
        data = await response.read()
        return response.status, data, response.headers


async def test_only_the_owner_and_the_consulting_doctor_see_a_document(api, sockets, database_url):
    anna = await api("anna@demo.test")
    doc = await upload(anna, png(), "rash.png", "A rash on my arm since Sunday")
    piotr = await api("piotr@demo.test")
    house = await api("dr.house@demo.test")

    # Another patient, and a doctor who is not consulting Anna: refused, and audited.
    for stranger in (piotr, house):
        status, body, _ = await get_content(stranger, doc["url"])
        assert status == 403 and b"not_your_document" in body
    listing = await house.call("GET", f"/api/patients/{anna.user['id']}/documents", expect=404)
    assert listing["error"]["code"] == "patient_not_found"
    denied = [r for r in await rows(database_url, t.audit_log) if not r.allowed]
    assert {(r.action, r.actor_id) for r in denied} >= {
        ("document.read", piotr.user["id"]),
        ("document.read", house.user["id"]),
        ("document.list", house.user["id"]),
    }
    assert all(r.patient_id == anna.user["id"] for r in denied)
    missing = await anna.call("GET", "/api/documents/99999/content", expect=404)
    assert missing["error"]["code"] == "document_not_found"

    # While Dr House consults Anna he sees her documents, with the description.
    house_ws = await sockets(house.token)
    await house_ws.emit(
        "presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]}
    )
    cid = await start_and_accept(anna, house_ws, "internal-medicine")
    listed = await house.call("GET", f"/api/patients/{anna.user['id']}/documents")
    assert [(d["id"], d["description"]) for d in listed["documents"]] == [
        (doc["id"], "A rash on my arm since Sunday")
    ]
    status, data, headers = await get_content(house, doc["url"])
    assert status == 200 and data == png() and headers["Content-Type"] == "image/png"
    reads = [
        r
        for r in await rows(database_url, t.audit_log)
        if r.action == "document.read" and r.allowed and r.actor_id == house.user["id"]
    ]
    assert len(reads) == 1 and reads[0].patient_id == anna.user["id"]

    # Once the consultation has ended, a document never shared with him is closed again.
    await house.call("POST", f"/api/consultations/{cid}/end", {})
    status, _, _ = await get_content(house, doc["url"])
    assert status == 403
    await house.call("GET", f"/api/patients/{anna.user['id']}/documents", expect=404)


async def test_a_shared_document_appears_in_the_chat_and_the_doctor_opens_it(
    api, sockets, database_url
):
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    doc = await upload(anna, PDF, "ecg.pdf", "ECG from last week")
    other = await upload(anna, JPEG, "other.jpg", "Not shared")
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit(
        "presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]}
    )
    cid = await start_and_accept(anna, house_ws, "internal-medicine")

    message = await anna.call(
        "POST",
        f"/api/consultations/{cid}/documents",
        {"document_id": doc["id"], "client_id": "share-1"},
        expect=201,
    )
    expected = {
        "id": doc["id"],
        "filename": "ecg.pdf",
        "description": "ECG from last week",
        "content_type": "application/pdf",
        "size": len(PDF),
        "deleted": False,
    }
    assert message["document"] == expected and message["sender_role"] == "patient"
    # The doctor's console gets it live, with the document.
    live = (await house_ws.next("chat:message"))["message"]
    assert live["id"] == message["id"] and live["document"] == expected
    assert (await anna_ws.next("chat:message"))["message"]["document"] == expected
    # A retry with the same client id is the same message.
    again = await anna.call(
        "POST",
        f"/api/consultations/{cid}/documents",
        {"document_id": doc["id"], "client_id": "share-1"},
        expect=201,
    )
    assert again["id"] == message["id"]
    transcript = (await house.call("GET", f"/api/consultations/{cid}/messages"))["messages"]
    assert [m["document"] for m in transcript] == [expected]

    status, data, _ = await get_content(house, doc["url"])
    assert status == 200 and data == PDF
    await house.call("POST", f"/api/consultations/{cid}/end", {})
    # After the visit the doctor still opens what was shared with him (it is in the transcript
    # of his consultation, which he keeps reading in the record), but nothing else.
    status, data, _ = await get_content(house, doc["url"])
    assert status == 200 and data == PDF
    status, _, _ = await get_content(house, other["url"])
    assert status == 403
    shared_read = [
        r
        for r in await rows(database_url, t.audit_log)
        if r.action == "document.read" and r.actor_id == house.user["id"]
    ]
    assert [(r.consultation_id, r.allowed) for r in shared_read] == [
        (cid, True),
        (cid, True),
        (None, False),
    ]

    # Sharing into a consultation that has ended is refused.
    late = await anna.call(
        "POST",
        f"/api/consultations/{cid}/documents",
        {"document_id": other["id"], "client_id": "share-2"},
        expect=409,
    )
    assert late["error"]["code"] == "consultation_not_active"


async def test_sharing_is_only_of_ones_own_document_into_ones_own_consultation(api, sockets):
    anna = await api("anna@demo.test")
    piotr = await api("piotr@demo.test")
    pdoc = await upload(piotr, PDF, "piotr.pdf")
    adoc = await upload(anna, PDF, "anna.pdf")
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit(
        "presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]}
    )
    cid = await start_and_accept(anna, house_ws, "internal-medicine")

    theirs = await anna.call(
        "POST",
        f"/api/consultations/{cid}/documents",
        {"document_id": pdoc["id"], "client_id": "x"},
        expect=403,
    )
    assert theirs["error"]["code"] == "not_your_document"
    not_mine = await piotr.call(
        "POST",
        f"/api/consultations/{cid}/documents",
        {"document_id": pdoc["id"], "client_id": "x"},
        expect=403,
    )
    assert not_mine["error"]["code"] == "not_participant"
    by_doctor = await house.call(
        "POST",
        f"/api/consultations/{cid}/documents",
        {"document_id": adoc["id"], "client_id": "x"},
        expect=403,
    )
    assert by_doctor["error"]["code"] == "not_a_patient"
    bad = await anna.call(
        "POST", f"/api/consultations/{cid}/documents", {"document_id": "one"}, expect=400
    )
    assert bad["error"]["code"] == "invalid_payload"
    # Nothing was posted.
    assert (await house.call("GET", f"/api/consultations/{cid}/messages"))["messages"] == []


async def test_a_deleted_document_is_gone_but_the_chat_says_it_was_shared(
    api, sockets, documents_dir
):
    anna = await api("anna@demo.test")
    doc = await upload(anna, PDF, "ecg.pdf", "ECG")
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit(
        "presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]}
    )
    cid = await start_and_accept(anna, house_ws, "internal-medicine")
    await anna.call(
        "POST",
        f"/api/consultations/{cid}/documents",
        {"document_id": doc["id"], "client_id": "s"},
        expect=201,
    )
    piotr = await api("piotr@demo.test")
    refused = await piotr.call("DELETE", f"/api/documents/{doc['id']}", expect=403)
    assert refused["error"]["code"] == "not_your_document"
    assert len(files_in(documents_dir)) == 1

    await anna.call("DELETE", f"/api/documents/{doc['id']}", expect=204)
    assert files_in(documents_dir) == []
    assert (await anna.call("GET", "/api/documents"))["documents"] == []
    for who in (anna, house):
        status, body, _ = await get_content(who, doc["url"])
        assert status == 404 and b"document_deleted" in body
    (message,) = (await house.call("GET", f"/api/consultations/{cid}/messages"))["messages"]
    assert message["document"]["deleted"] is True
    again = await anna.call("DELETE", f"/api/documents/{doc['id']}", expect=404)
    assert again["error"]["code"] == "document_not_found"
    share = await anna.call(
        "POST",
        f"/api/consultations/{cid}/documents",
        {"document_id": doc["id"], "client_id": "t"},
        expect=404,
    )
    assert share["error"]["code"] == "document_not_found"


# --- live updates ---------------------------------------------------------------------------

# The fields a chat message's document shares with the document itself.
_REF = ("id", "filename", "description", "content_type", "size")


async def test_uploads_and_deletions_reach_the_patient_and_her_doctor_live_and_nobody_else(
    api, sockets
):
    """``document:uploaded`` / ``document:deleted`` go, after the commit, to every connection of
    the patient and to the doctor consulting her now; not to another patient, nor to a doctor
    consulting someone else, nor to her doctor once the consultation has ended. Each socket
    gets its events in order, so a later event of its own proves an earlier one was not sent."""
    anna = await api("anna@demo.test")
    anna_tabs = [await sockets(anna.token), await sockets(anna.token)]
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit(
        "presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]}
    )
    cid = await start_and_accept(anna, house_ws, "internal-medicine")
    # Piotr, with Dr Grey consulting him (paediatrics, which Dr House does not practise).
    piotr = await api("piotr@demo.test")
    piotr_ws = await sockets(piotr.token)
    grey = await api("dr.grey@demo.test")
    grey_ws = await sockets(grey.token)
    await grey_ws.emit("presence:online", {"specialties": ["paediatrics"], "forms": ["chat"]})
    await start_and_accept(piotr, grey_ws, "paediatrics")
    annas = [*anna_tabs, house_ws]
    piotrs = [piotr_ws, grey_ws]

    async def uploaded(clients: list[Any], doc: dict[str, Any]) -> None:
        for ws in clients:
            event = await ws.next("document:uploaded")
            assert event == {"patient_id": doc["patient_id"], "document": doc}

    async def deleted(clients: list[Any], ref: dict[str, Any], patient_id: int) -> None:
        for ws in clients:
            event = await ws.next("document:deleted")
            assert event == {"patient_id": patient_id, "document": ref}

    # An upload: her tabs and Dr House get the document as the upload answered it.
    doc = await upload(anna, PDF, "ecg.pdf", "ECG from last week")
    await uploaded(annas, doc)
    # Piotr's upload reaches Piotr and Dr Grey, and it is the first they hear: not Anna's.
    pdoc = await upload(piotr, JPEG, "knee.jpg", "My knee")
    await uploaded(piotrs, pdoc)

    # Refused changes tell nobody: Piotr deleting her document, a file that is not a document.
    await piotr.call("DELETE", f"/api/documents/{doc['id']}", expect=403)
    await upload(anna, b"MZ not a document", "virus.pdf", expect=415)

    # She shares it, then deletes it: the event carries what the shared message shows from
    # now on, the same as the transcript after a reload.
    await anna.call(
        "POST",
        f"/api/consultations/{cid}/documents",
        {"document_id": doc["id"], "client_id": "share-1"},
        expect=201,
    )
    await anna.call("DELETE", f"/api/documents/{doc['id']}", expect=204)
    (message,) = (await house.call("GET", f"/api/consultations/{cid}/messages"))["messages"]
    assert message["document"]["deleted"] is True
    await deleted(annas, message["document"], anna.user["id"])
    assert message["document"] == {
        "id": doc["id"],
        "filename": "ecg.pdf",
        "description": "ECG from last week",
        "content_type": "application/pdf",
        "size": len(PDF),
        "deleted": True,
    }

    # Piotr deletes his: the first deletion he and Dr Grey hear of is his own.
    await piotr.call("DELETE", f"/api/documents/{pdoc['id']}", expect=204)
    await deleted(piotrs, {**{k: pdoc[k] for k in _REF}, "deleted": True}, piotr.user["id"])
    # And the next thing Anna's side hears is her own next upload, not Piotr's changes.
    second = await upload(anna, png(), "rash.png", "A rash")
    await uploaded(annas, second)
    for ws in annas + piotrs:
        assert ws.pending("document:uploaded") == 0 and ws.pending("document:deleted") == 0

    # Once the consultation has ended, Dr House is told no more; her tabs still are.
    await house.call("POST", f"/api/consultations/{cid}/end", {})
    await anna.call("DELETE", f"/api/documents/{second['id']}", expect=204)
    await deleted(anna_tabs, {**{k: second[k] for k in _REF}, "deleted": True}, anna.user["id"])
    await asyncio.sleep(0.2)  # the same emit would have reached him by now
    assert house_ws.pending("document:deleted") == 0
