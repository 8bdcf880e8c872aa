"""Reading an ``.ics`` in tests: the framing RFC 5545 asks for (CRLF, physical lines of at most
75 octets, folding that never splits a UTF-8 character) checked strictly, then the calendar
parsed with ``icalendar``, as a calendar application would."""

from __future__ import annotations

from icalendar import Calendar, Component


def parse(text: str) -> tuple[Component, Calendar]:
    """``(vevent, vcalendar)`` of a calendar holding one event. Raises AssertionError on bad
    framing or another shape."""
    raw = text.encode()
    assert raw.endswith(b"\r\n"), "an iCalendar stream ends with CRLF"
    assert b"\n" not in raw.replace(b"\r\n", b""), "bare LF line ending"
    assert b"\r" not in raw.replace(b"\r\n", b""), "bare CR"
    for physical in raw.split(b"\r\n"):
        assert len(physical) <= 75, f"line longer than 75 octets: {physical!r}"
        physical.decode()  # folding never splits a UTF-8 character
    vcalendar = Calendar.from_ical(text)
    assert isinstance(vcalendar, Calendar)
    assert not vcalendar.errors, vcalendar.errors
    (vevent,) = vcalendar.walk("VEVENT")
    assert not vevent.errors, vevent.errors
    return vevent, vcalendar
