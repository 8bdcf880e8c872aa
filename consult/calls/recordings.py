"""Where call recordings are kept: a folder of their own, never under the web root.

A recording has two files while it is made: the recorder's tracks (``<name>.tracks.webm``, one
track per participant and kind, as forwarded) and, once composed after the call
(media/composition.py), the file participants download (``<name>``: one picture, one sound).
The tracks are removed once the composed file is kept; they stay when composing failed, for an
operator to compose again by hand (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from pathlib import Path

from consult.attachments import storage_root


class RecordingStore:
    def __init__(self, root: Path, *, web_root: Path | None = None) -> None:
        self.root = storage_root(
            root, web_root, what="recordings", setting="CONSULT_RECORDINGS_DIR"
        )

    def new_name(self, consultation_id: int) -> str:
        # Unguessable: the name alone never gives a recording away (downloads check access).
        return f"{consultation_id}-{secrets.token_hex(12)}.webm"

    def path(self, stored_name: str) -> Path:
        if "/" in stored_name or "\\" in stored_name or stored_name.startswith("."):
            raise ValueError(f"not a stored recording name: {stored_name!r}")
        return self.root / stored_name

    def tracks_path(self, stored_name: str) -> Path:
        """Where the recorder writes the call's tracks (composed into ``path`` afterwards)."""
        return self.path(stored_name).with_suffix(".tracks.webm")

    def composing_path(self, stored_name: str) -> Path:
        """Where the composed file is written before it takes its name (never served)."""
        return self.root / f".{stored_name}.part"

    async def remove(self, stored_name: str) -> None:
        """Remove a recording's files that no row names (a recording whose start was rolled
        back)."""
        await asyncio.to_thread(self.path(stored_name).unlink, missing_ok=True)
        await self.remove_tracks(stored_name)

    async def remove_tracks(self, stored_name: str) -> None:
        await asyncio.to_thread(self.tracks_path(stored_name).unlink, missing_ok=True)

    async def has_tracks(self, stored_name: str) -> bool:
        """Whether the recorder wrote anything (it opens its file at the first packets)."""
        return await asyncio.to_thread(self.tracks_path(stored_name).is_file)

    async def checksum(self, stored_name: str) -> tuple[int, str] | None:
        """Size and SHA-256 of a finished file (None when it was never written)."""
        return await asyncio.to_thread(_checksum, self.path(stored_name))


def _checksum(path: Path) -> tuple[int, str] | None:
    if not path.exists():
        return None
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
