"""iCalendar (RFC 5545) for one booking: a VCALENDAR holding one VEVENT.

Written with the ``icalendar`` library, which does the format's details (CRLF line endings,
TEXT values escaped, lines folded at 75 octets without splitting a UTF-8 character). Times are
given in UTC, so every calendar reads them as the same instant without a VTIMEZONE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from icalendar import Calendar, Event

PRODID = "-//consult//booking//EN"


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
    vevent = Event()
    vevent.add("uid", event.uid)
    vevent.add("dtstamp", utc(stamp))
    vevent.add("dtstart", utc(event.starts_at))
    vevent.add("dtend", utc(event.ends_at))
    vevent.add("summary", event.summary)
    vevent.add("location", event.location)
    vevent.add("description", event.description)
    vevent.add("status", "CANCELLED" if event.cancelled else "CONFIRMED")
    vevent.add("sequence", 1 if event.cancelled else 0)
    vevent.add("transp", "OPAQUE")

    vcalendar = Calendar()
    vcalendar.add("version", "2.0")
    vcalendar.add("prodid", PRODID)
    vcalendar.add("calscale", "GREGORIAN")
    vcalendar.add("method", "PUBLISH")
    vcalendar.add_component(vevent)
    return vcalendar.to_ical().decode()


def utc(value: datetime) -> datetime:
    """``value`` in UTC (written ``19980119T070000Z``); naive values are taken as UTC."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC)
