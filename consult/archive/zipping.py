"""A ZIP archive written while it is sent: the standard library's ``zipfile`` on a stream it
cannot seek, so each entry's sizes and CRC-32 follow its data (a data descriptor) and the
central directory comes last, as ZIP allows; every reader takes it.

Nothing is held but the chunk in flight: a stored file is read ``CHUNK`` bytes at a time in a
worker thread, which also passes them through ``zipfile`` (the CRC) into a spool; the loop then
hands the spool's bytes to ``send`` (the HTTP response, which waits while the client is slow)
before the next chunk is read. Files are stored as they are (JPEG, PNG, PDF and WebM are
compressed already); JSON is deflated. Entries larger than ZIP's 4 GiB, and archives with
more, get ZIP64 records (decided from each file's size before it is written).
"""

from __future__ import annotations

import asyncio
import os
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import IO, BinaryIO, Final

Send = Callable[[bytes | bytearray], Awaitable[None]]
CHUNK: Final = 256 * 1024
# Extracted files are the user's alone (on systems whose unzip keeps Unix modes).
_MODE: Final = 0o600 << 16
_EARLIEST: Final = (1980, 1, 1, 0, 0, 0)  # ZIP's dates start in 1980


class _Spool:
    """What ``zipfile`` writes, until the loop sends it. No ``tell`` or ``seek``: ``zipfile``
    then writes for a stream."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytearray:
        # Handed over whole, not copied: a new buffer takes its place.
        data, self.data = self.data, bytearray()
        return data


class ZipStream:
    """Entries added one at a time, each sent as it is written; ``close`` sends the central
    directory. One entry at a time: the caller awaits each ``add_*``."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._spool = _Spool()
        self._zip = zipfile.ZipFile(self._spool, "w")

    async def add_bytes(self, name: str, data: bytes, at: datetime, *, deflate: bool) -> int:
        """An entry made in memory (the bundle, a printout, the manifest); its size."""
        info = _info(name, at, len(data), deflate=deflate)
        await asyncio.to_thread(self._zip.writestr, info, data)
        await self._flush()
        return len(data)

    async def add_file(self, name: str, path: Path, at: datetime) -> int | None:
        """A stored file, read a chunk at a time; its size, or None when it is not there (no
        entry is written)."""
        try:
            source: BinaryIO = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            return None
        try:
            size = (await asyncio.to_thread(os.fstat, source.fileno())).st_size
            entry = self._zip.open(_info(name, at, size, deflate=False), "w")
            written = 0
            try:
                while copied := await asyncio.to_thread(_copy, source, entry):
                    written += copied
                    await self._flush()
            finally:
                entry.close()  # the data descriptor: its CRC and sizes
            await self._flush()
            return written
        finally:
            source.close()

    async def add_chunks(
        self, name: str, chunks: AsyncIterator[bytes], at: datetime, *, deflate: bool
    ) -> int:
        """An entry made as it is sent, from ``chunks`` (of a size unknown ahead: at most
        4 GiB, no ZIP64); its size."""
        entry = self._zip.open(_info(name, at, 0, deflate=deflate), "w")
        written = 0
        try:
            async for chunk in chunks:
                await asyncio.to_thread(entry.write, chunk)
                written += len(chunk)
                await self._flush()
        finally:
            entry.close()
        await self._flush()
        return written

    async def close(self) -> None:
        self._zip.close()
        await self._flush()

    async def _flush(self) -> None:
        if self._spool.data:
            await self._send(self._spool.take())


def _copy(source: BinaryIO, entry: IO[bytes]) -> int:
    chunk = source.read(CHUNK)
    entry.write(chunk)
    return len(chunk)


def _info(name: str, at: datetime, size: int, *, deflate: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, max(_EARLIEST, at.timetuple()[:6]))
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    info.external_attr = _MODE
    info.file_size = size  # ZIP64 when it needs it: zipfile decides by this before writing
    return info
