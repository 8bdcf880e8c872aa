"""The document rules, as pure checks: limits, the display name, the description."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

from consult.errors import ConsultError, Invalid

# 8 MB, in the binary sense the portal uses: 8 x 1024 x 1024 bytes.
MAX_SIZE = 8 * 1024 * 1024
# Documents a patient may keep at a time (deleted ones do not count).
MAX_FILES = 5
MAX_DESCRIPTION = 500
MAX_FILENAME = 200


class FileTooLarge(ConsultError):
    status = 413
    default_code = "file_too_large"


class UnsupportedFileType(ConsultError):
    status = 415
    default_code = "unsupported_file_type"


def file_too_large() -> FileTooLarge:
    return FileTooLarge(f"a document may be at most {MAX_SIZE // (1024 * 1024)} MB")


def unsupported_file_type() -> UnsupportedFileType:
    return UnsupportedFileType(
        "only JPEG, PNG and PDF files are accepted, and this file's content is none of them "
        "(or it is incomplete)"
    )


def safe_filename(raw: str | None) -> str:
    """The upload's name as metadata: refused if it tries to name a path, stripped of control
    characters, at most ``MAX_FILENAME`` characters (the extension kept)."""
    if raw is None or not raw.strip():
        raise Invalid("the file name is missing", code="invalid_filename")
    # Some clients (aiohttp's, curl's) percent-encode the name: judge it both ways.
    try:
        decoded = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        decoded = raw
    for candidate in (raw, decoded):
        if "\x00" in candidate or "/" in candidate or "\\" in candidate:
            raise Invalid(
                "the file name may not contain a path (/, \\, ..) or a NUL byte",
                code="invalid_filename",
            )
    if decoded.strip() in (".", ".."):
        raise Invalid("the file name may not be . or ..", code="invalid_filename")
    name = "".join(c for c in decoded if unicodedata.category(c)[0] != "C").strip()
    if not name or name.strip(".") == "":
        raise Invalid(
            "the file name is empty once control characters are removed", code="invalid_filename"
        )
    if len(name) > MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        if dot and len(ext) <= 10:
            name = stem[: MAX_FILENAME - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_FILENAME]
    return name


def check_description(raw: str | None) -> str:
    text = (raw or "").strip()
    if not text:
        raise Invalid(
            "a description is required: say what the document is, for the doctor",
            code="description_required",
        )
    if "\x00" in text:
        # PostgreSQL's text cannot hold it (as the payload models refuse it: schemas.In).
        raise Invalid(
            "the description must not contain the NUL character (U+0000)",
            code="invalid_description",
        )
    if len(text) > MAX_DESCRIPTION:
        raise Invalid(
            f"the description may be at most {MAX_DESCRIPTION} characters ({len(text)} given)",
            code="description_too_long",
        )
    return text


# The most pixels an image may declare (width x height): a 50-megapixel photo passes, and a
# small file that declares a picture large enough to exhaust memory when shown does not.
MAX_PIXELS = 50_000_000
# The most objects a PDF may hold: a scanned report has hundreds; the bound keeps the check of
# every object (inspection.py) short.
MAX_PDF_OBJECTS = 100_000


class ImageTooLarge(ConsultError):
    status = 413
    default_code = "image_too_large"


class UnreadableDocument(ConsultError):
    status = 422
    default_code = "unreadable_document"


class ActiveContent(ConsultError):
    status = 422
    default_code = "document_active_content"


def image_too_large(width: int | None = None, height: int | None = None) -> ImageTooLarge:
    declared = f" (this one declares {width} x {height})" if width and height else ""
    return ImageTooLarge(
        f"an image may have at most {MAX_PIXELS:,} pixels{declared}".replace(",", " ")
    )


def unreadable_document(kind: str) -> UnreadableDocument:
    return UnreadableDocument(
        f"the file starts and ends like a {kind} but cannot be read as one (damaged, or "
        "something else inside)"
    )


def active_content(what: str) -> ActiveContent:
    return ActiveContent(
        f"PDFs with scripts, launch actions or embedded files are not accepted ({what} found): "
        "save or print the document to a plain PDF and upload that"
    )
