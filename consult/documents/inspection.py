"""What an upload holds, judged by parsing it whole with well-kept libraries (Pillow, pikepdf).

``sniff`` (sniff.py) only looks at a file's ends: a PNG that declares 50 000 x 50 000 pixels, a
PDF that runs JavaScript when opened and an executable wrapped in ``%PDF-...%%EOF`` all pass it.
This module runs after it, on the received file, in a thread (parsing is CPU work and must not
hold the event loop), and refuses:

- an image that Pillow cannot identify as the sniffed format or whose data do not verify
  (``unreadable_document``), or that declares more than ``MAX_PIXELS`` (``image_too_large``),
  judged from its header before any pixel is decoded;
- a PDF that qpdf (through pikepdf) cannot open, that has no page, or that holds more than
  ``MAX_PDF_OBJECTS`` objects (``unreadable_document``);
- a PDF with active content (``document_active_content``): JavaScript, launch actions, embedded
  files and their kin, wherever they sit (every object is looked at, reachable or not). Such a
  PDF is refused, not stripped: re-saving it would store something other than what the patient
  sent, and a clinical document has no need of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pikepdf
from PIL import Image, UnidentifiedImageError

from consult.documents.rules import (
    MAX_PDF_OBJECTS,
    MAX_PIXELS,
    active_content,
    image_too_large,
    unreadable_document,
)
from consult.documents.sniff import JPEG, PDF, PNG

_PILLOW_FORMATS = {JPEG: "JPEG", PNG: "PNG"}

# Keys that only active content uses (ISO 32000-1: 12.6 actions, 7.11 embedded files, 12.7.8
# XFA forms; RichMedia from Adobe's extension level 3).
_ACTIVE_KEYS = {"/JS", "/JavaScript", "/EmbeddedFiles", "/EF", "/RichMedia", "/XFA"}
# Action types (/S) that run code, start programs, open embedded files or import data.
_ACTIVE_ACTIONS = {
    "/JavaScript",
    "/Launch",
    "/GoToE",
    "/ImportData",
    "/RichMediaExecute",
    "/SubmitForm",
}
_ACTIVE_TYPES = {("/Type", "/EmbeddedFile"), ("/Subtype", "/FileAttachment")}
# Bounds of the walk through nested (direct) objects: no honest document comes near them.
_MAX_DEPTH = 64
_MAX_NODES = 2_000_000


def inspect(path: Path, content_type: str) -> None:
    """Refuse (raise) the file at ``path`` unless it is a readable, harmless ``content_type``.
    Blocking: run it in a thread (file_store.py does, a bounded number at a time)."""
    if content_type == PDF:
        _inspect_pdf(path)
    else:
        _inspect_image(path, _PILLOW_FORMATS[content_type])


def _inspect_image(path: Path, pillow_format: str) -> None:
    try:
        with Image.open(path, formats=[pillow_format]) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise image_too_large(width, height)
            image.verify()  # the data's structure and checksums, without decoding pixels
    except Image.DecompressionBombError as exc:  # Pillow's own, larger bound
        raise image_too_large() from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise unreadable_document(pillow_format) from exc


def _inspect_pdf(path: Path) -> None:
    try:
        with pikepdf.open(path) as pdf:
            if len(pdf.objects) > MAX_PDF_OBJECTS:
                raise unreadable_document("PDF of at most 100 000 objects")
            if len(pdf.pages) < 1:
                raise unreadable_document("PDF with pages")
            budget = [_MAX_NODES]
            for obj in pdf.objects:
                found = _active(obj, 0, budget)
                if found:
                    raise active_content(found)
    except (pikepdf.PdfError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise unreadable_document("PDF") from exc


def _active(obj: Any, depth: int, budget: list[int]) -> str | None:
    """What active content ``obj`` or its direct (nested, not referenced) parts hold, if any.
    Referenced objects are visited on their own, from ``pdf.objects``."""
    budget[0] -= 1
    if budget[0] < 0 or depth > _MAX_DEPTH:
        raise ValueError("too deeply nested or too many objects")
    if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
        keys = set(obj.keys())
        if hit := keys & _ACTIVE_KEYS:
            return min(hit)
        if str(obj.get("/S", "")) in _ACTIVE_ACTIONS:
            return f"a {obj.get('/S')} action"
        for key, value in _ACTIVE_TYPES:
            if key in keys and str(obj.get(key)) == value:
                return value
        children: Any = (obj.get(k) for k in keys)
    elif isinstance(obj, pikepdf.Array):
        children = iter(obj)
    else:
        return None
    for child in children:
        if isinstance(child, pikepdf.Dictionary | pikepdf.Array) and not child.is_indirect:
            if found := _active(child, depth + 1, budget):
                return found
    return None
