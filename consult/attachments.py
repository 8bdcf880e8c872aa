"""Files the server keeps and hands out as downloads (medical documents, call recordings).

Both kinds live in a folder of their own that must never be under the web root: the static
route would serve them to anyone. Both go out as attachments with a fixed type and
``nosniff``, with a sandbox policy, so a browser never renders one as a page of this site.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote


class StorageDirError(RuntimeError):
    """A storage folder is not usable (it lies inside the web root)."""


def storage_root(root: Path, web_root: Path | None, *, what: str, setting: str) -> Path:
    """``root`` resolved, refused (``StorageDirError``) when it lies inside ``web_root``."""
    resolved = root.resolve()
    if web_root is not None and resolved.is_relative_to(web_root.resolve()):
        raise StorageDirError(
            f"the {what} directory {resolved} is inside the web root {web_root}: "
            f"set {setting} to a folder outside it"
        )
    return resolved


def attachment_headers(filename: str, content_type: str) -> dict[str, str]:
    """The headers of a file sent as a download, never shown inline."""
    return {
        "Content-Type": content_type,
        "Content-Disposition": content_disposition(filename),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact name in RFC 5987 form."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
