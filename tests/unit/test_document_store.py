"""The document store streams an upload to disk: the stored bytes and checksum are the upload's
whatever the chunking, and a refused upload leaves no file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from consult.attachments import StorageDirError
from consult.documents.file_store import DocumentStore, ReadChunk
from consult.documents.rules import FileTooLarge, UnsupportedFileType
from tests.support import pdf

PDF = pdf(1_400_000)


def reader(data: bytes, piece: int) -> tuple[ReadChunk, list[int]]:
    """Hands out ``data`` in pieces of at most ``piece`` bytes; records how much was read."""
    read = [0]

    async def read_chunk(size: int) -> bytes:
        chunk = data[read[0] : read[0] + min(size, piece)]
        read[0] += len(chunk)
        return chunk

    return read_chunk, read


@pytest.mark.parametrize("piece", [1000, 8192, 65_536, 1_000_000])
async def test_the_stored_file_and_checksum_are_the_uploads(tmp_path: Path, piece: int) -> None:
    store = DocumentStore(tmp_path)
    read_chunk, _ = reader(PDF, piece)
    received = await store.receive(read_chunk)
    assert received.content_type == "application/pdf" and received.size == len(PDF)
    assert received.sha256 == hashlib.sha256(PDF).hexdigest()
    name = await store.keep(received)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert (tmp_path / name).read_bytes() == PDF
    assert (tmp_path / name).stat().st_mode & 0o777 == 0o600


async def test_reading_stops_at_the_limit_and_leaves_nothing(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    read_chunk, read = reader(PDF, 10_000)
    with pytest.raises(FileTooLarge):
        await store.receive(read_chunk, limit=100_000)
    # It stopped within one chunk of the limit instead of reading the rest.
    assert 100_000 < read[0] <= 110_000 < len(PDF)
    assert list(tmp_path.iterdir()) == []


async def test_content_that_is_not_accepted_leaves_nothing(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    read_chunk, _ = reader(PDF[:-1100], 65_536)  # the %%EOF trailer cut off
    with pytest.raises(UnsupportedFileType):
        await store.receive(read_chunk)
    assert list(tmp_path.iterdir()) == []


def test_the_directory_may_not_be_inside_the_web_root(tmp_path: Path) -> None:
    with pytest.raises(StorageDirError, match="inside the web root"):
        DocumentStore(tmp_path / "web" / "uploads", web_root=tmp_path / "web")
    DocumentStore(tmp_path / "documents", web_root=tmp_path / "web")


def test_stored_names_are_never_paths(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    with pytest.raises(ValueError):
        store.path("../etc/passwd")
