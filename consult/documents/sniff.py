"""What a file is, judged by its content alone (never by its name or declared type).

Only three kinds are accepted, and each must look whole at both ends, so a renamed executable,
an HTML or SVG page named ``.png`` and a file cut short in transit are all refused:

- JPEG: starts with the SOI marker and a segment marker (FF D8 FF), ends with EOI (FF D9);
- PNG: the 8-byte signature, an IHDR chunk first, the IEND chunk last;
- PDF: the ``%PDF-1.x`` / ``%PDF-2.x`` header at the start, ``%%EOF`` in the last kilobyte.

Pure functions over the first and last bytes of a file (``HEAD`` / ``TAIL`` bytes of each are
enough), so the upload never needs the whole file in memory.
"""

from __future__ import annotations

import re

HEAD = 1024
# PDF readers look for %%EOF in the last 1024 bytes (ISO 32000-1, 7.5.5).
TAIL = 1024

JPEG = "image/jpeg"
PNG = "image/png"
PDF = "application/pdf"

EXTENSIONS = {JPEG: (".jpg", ".jpeg"), PNG: (".png",), PDF: (".pdf",)}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A zero-length IEND chunk and its fixed CRC.
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_PDF_HEADER = re.compile(rb"%PDF-[12]\.\d")
# Padding some writers leave after the end marker.
_PADDING = b"\x00\r\n\t "


def sniff(head: bytes, tail: bytes) -> str | None:
    """The content type of a file that starts with ``head`` and ends with ``tail``, or None.

    ``head`` is at least the file's first ``HEAD`` bytes (or all of it), ``tail`` its last
    ``TAIL`` bytes (or all of it)."""
    end = tail.rstrip(_PADDING)
    if head.startswith(b"\xff\xd8\xff") and end.endswith(b"\xff\xd9") and len(head) >= 4:
        return JPEG
    if (
        head.startswith(_PNG_SIGNATURE)
        and head[12:16] == b"IHDR"
        and tail.endswith(_PNG_IEND)
        and len(head) >= 8 + 25
    ):
        return PNG
    if _PDF_HEADER.match(head) and b"%%EOF" in tail[-TAIL:]:
        return PDF
    return None


def sniff_bytes(data: bytes) -> str | None:
    """``sniff`` for a file held whole."""
    return sniff(data[:HEAD], data[-TAIL:])


def display_name(filename: str, content_type: str) -> str:
    """The name the file is downloaded under: ends in an extension that matches its content,
    so a PDF uploaded as ``scan.png`` downloads as ``scan.png.pdf``."""
    extensions = EXTENSIONS[content_type]
    if filename.lower().endswith(extensions):
        return filename
    return filename + extensions[0]
