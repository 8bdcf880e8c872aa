"""Where call recordings are kept: a folder of their own, never under the web root."""

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

    async def remove(self, stored_name: str) -> None:
        """Remove a file that no row names (a recording whose start was rolled back)."""
        await asyncio.to_thread(self.path(stored_name).unlink, missing_ok=True)

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
