"""iCalendar (RFC 5545) for one booking: a VCALENDAR holding one VEVENT.

Hand-written because it is small: CRLF line endings, TEXT values escaped (backslash, comma,
semicolon, newline), times in UTC (``...Z``), lines longer than 75 octets folded without
splitting a UTF-8 character.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

PRODID = "-//consult//booking//EN"
_MAX_OCTETS = 75


@dataclass(frozen=True)
class CalendarEvent:
    uid: str
    starts_at: datetime
    ends_at: datetime
    summary: str
    location: str
    description: str
    cancelled: bool = False


def calendar(event: CalendarEvent, stamp: datetime) -> str:
    """The ``.ics`` text. ``stamp`` is when it was made (DTSTAMP). A cancelled booking keeps its
    UID and gets STATUS:CANCELLED with a higher SEQUENCE, so a calendar that imported it before
    updates the same event."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{escape_text(event.uid)}",
        f"DTSTAMP:{utc_time(stamp)}",
        f"DTSTART:{utc_time(event.starts_at)}",
        f"DTEND:{utc_time(event.ends_at)}",
        f"SUMMARY:{escape_text(event.summary)}",
        f"LOCATION:{escape_text(event.location)}",
        f"DESCRIPTION:{escape_text(event.description)}",
        f"STATUS:{'CANCELLED' if event.cancelled else 'CONFIRMED'}",
        f"SEQUENCE:{1 if event.cancelled else 0}",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(fold(line) + "\r\n" for line in lines)


def utc_time(value: datetime) -> str:
    """A DATE-TIME in UTC form (``19980119T070000Z``); naive values are taken as UTC."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11)."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Split a content line into lines of at most 75 octets, each continuation starting with one
    space (RFC 5545 3.1), never inside a multi-octet UTF-8 character."""
    if len(line.encode()) <= _MAX_OCTETS:
        return line
    parts: list[str] = []
    current = ""
    size = 0
    limit = _MAX_OCTETS
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            parts.append(current)
            current, size = "", 0
            limit = _MAX_OCTETS - 1  # the leading space of a continuation line counts
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def unfold(text: str) -> list[str]:
    """The content lines of an ``.ics`` text (the inverse of :func:`fold`), for readers and
    tests."""
    unfolded = text.replace("\r\n ", "").replace("\r\n\t", "")
    return [line for line in unfolded.split("\r\n") if line]
