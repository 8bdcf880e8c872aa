"""Document files on disk: a directory outside the web root, one file per document under a
generated name. An upload is streamed to a temporary file while its size and SHA-256 are
counted; it is refused the moment it passes the limit, and the temporary file is removed on
any failure. File I/O runs in threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from consult.attachments import storage_root
from consult.documents.inspection import inspect
from consult.documents.rules import MAX_SIZE, file_too_large, unsupported_file_type
from consult.documents.sniff import HEAD, TAIL, sniff
from consult.private_files import private_dir

log = logging.getLogger(__name__)

# Reads one chunk of the upload; b"" at its end (aiohttp's BodyPartReader.read_chunk fits).
ReadChunk = Callable[[int], Awaitable[bytes]]
CHUNK = 256 * 1024
# Parsing an upload whole (inspection.py) takes a core: two at a time at most, so a burst of
# uploads cannot starve the calls and chats this process serves.
PARSERS = 2


@dataclass
class Received:
    """An upload written to a temporary file, checked, not yet kept."""

    temp: Path
    size: int
    sha256: str
    content_type: str


class DocumentStore:
    def __init__(self, root: Path, *, web_root: Path | None = None) -> None:
        self.root = storage_root(root, web_root, what="documents", setting="CONSULT_DOCUMENTS_DIR")
        self._parsers = asyncio.Semaphore(PARSERS)

    def path(self, stored_name: str) -> Path:
        # Stored names are generated here (hex only): never a path from a client.
        if not stored_name.isalnum():
            raise ValueError("not a stored document name")
        return self.root / stored_name

    async def receive(self, read_chunk: ReadChunk, limit: int = MAX_SIZE) -> Received:
        """Stream an upload to a temporary file; refuse it (``FileTooLarge``) as soon as it
        passes ``limit``, (``UnsupportedFileType``) if its content is not an accepted type, and
        as inspection.py says if parsing it whole finds it unreadable or hostile."""
        await asyncio.to_thread(private_dir, self.root)
        temp = self.root / f".{secrets.token_hex(16)}.part"
        digest = hashlib.sha256()
        head = b""
        tail = b""
        size = 0
        out: BinaryIO = await asyncio.to_thread(_open_new, temp)
        # Chunks gather up to CHUNK bytes; a thread writes and hashes them (hashlib releases the
        # GIL on large buffers) while the loop reads the next ones. One write in flight at a
        # time keeps the order and bounds the memory.
        loop = asyncio.get_running_loop()
        pending = bytearray()
        inflight: asyncio.Future[None] | None = None
        try:
            try:
                while chunk := await read_chunk(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise file_too_large()
                    if len(head) < HEAD:
                        head += chunk[: HEAD - len(head)]
                    tail = (tail + chunk[-TAIL:])[-TAIL:]
                    pending += chunk
                    if len(pending) >= CHUNK:
                        if inflight is not None:
                            await inflight
                        # Handed over whole, not copied: a new buffer takes its place.
                        data, pending = pending, bytearray()
                        inflight = loop.run_in_executor(None, _write, out, digest, data)
                if inflight is not None:
                    await inflight
                    inflight = None
                if pending:
                    await asyncio.to_thread(_write, out, digest, pending)
            finally:
                if inflight is not None:  # failed mid-way: let the write end before closing
                    with contextlib.suppress(Exception):
                        await asyncio.shield(inflight)
                await asyncio.to_thread(out.close)
            content_type = sniff(head, tail)
            if content_type is None:
                raise unsupported_file_type()
            async with self._parsers:
                await asyncio.to_thread(inspect, temp, content_type)
        except BaseException:
            await self.discard(temp)
            raise
        return Received(temp, size, digest.hexdigest(), content_type)

    async def keep(self, received: Received) -> str:
        """Move a received upload to its generated name; returns that name."""
        name = secrets.token_hex(16)
        await asyncio.to_thread(os.replace, received.temp, self.path(name))
        return name

    async def discard(self, path: Path) -> None:
        """Remove a file, if it is there (a temporary or a kept file being rolled back)."""
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError:
            log.exception("could not remove the document file %s", path.name)

    async def remove(self, stored_name: str) -> None:
        await self.discard(self.path(stored_name))

    async def exists(self, stored_name: str) -> bool:
        return await asyncio.to_thread(self.path(stored_name).is_file)


def _write(out: BinaryIO, digest: Any, data: bytes | bytearray) -> None:
    digest.update(data)
    out.write(data)


def _open_new(path: Path) -> BinaryIO:
    # O_EXCL: never write over an existing file; 0o600: readable by the server's user only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        return os.fdopen(fd, "wb")
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
