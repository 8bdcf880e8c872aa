"""The booking's ``.ics``: one event with the booking's figures, TEXT escaped, lines folded at 75
octets, times in UTC; read back with ``icalendar`` (tests/ics_reader.py checks the framing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consult.booking.ics import CalendarEvent, calendar
from tests import ics_reader

WARSAW = ZoneInfo("Europe/Warsaw")
STAMP = datetime(2026, 1, 5, 10, 0, 1, tzinfo=UTC)


def event(**changes: object) -> CalendarEvent:
    values: dict[str, object] = {
        "uid": "booking-7@consult",
        "starts_at": datetime(2026, 1, 12, 9, 0, tzinfo=WARSAW),
        "ends_at": datetime(2026, 1, 12, 9, 20, tzinfo=WARSAW),
        "summary": "Dermatology: Dr Iwona Skóra",
        "location": "At the clinic (in person)",
        "description": "Visit; bring results, a list of medicines\nand your card.",
    }
    values.update(changes)
    return CalendarEvent(**values)  # type: ignore[arg-type]


def test_calendar_has_one_event_with_the_booking():
    text = calendar(event(), stamp=STAMP)
    assert text.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//consult//booking//EN\r\n")
    assert text.endswith("END:VEVENT\r\nEND:VCALENDAR\r\n")
    vevent, vcalendar = ics_reader.parse(text)
    assert vcalendar["VERSION"] == "2.0" and vcalendar["METHOD"] == "PUBLISH"
    assert vcalendar["CALSCALE"] == "GREGORIAN"
    assert vevent["UID"] == "booking-7@consult"
    assert vevent.decoded("DTSTAMP") == STAMP
    assert vevent.decoded("DTSTART") == datetime(2026, 1, 12, 8, 0, tzinfo=UTC)
    assert vevent.decoded("DTEND") == datetime(2026, 1, 12, 8, 20, tzinfo=UTC)
    assert vevent["SUMMARY"] == "Dermatology: Dr Iwona Skóra"
    assert vevent["LOCATION"] == "At the clinic (in person)"
    assert vevent["DESCRIPTION"] == "Visit; bring results, a list of medicines\nand your card."
    assert vevent["STATUS"] == "CONFIRMED" and vevent["SEQUENCE"] == 0
    assert vevent["TRANSP"] == "OPAQUE"
    # What a calendar application reads: UTC times with Z, TEXT escaped (a colon needs none).
    lines = text.split("\r\n")
    assert "DTSTAMP:20260105T100001Z" in lines
    assert "DTSTART:20260112T080000Z" in lines and "DTEND:20260112T082000Z" in lines
    assert "DESCRIPTION:Visit\\; bring results\\, a list of medicines\\nand your card." in lines
    assert "SUMMARY:Dermatology: Dr Iwona Skóra" in lines


@pytest.mark.parametrize(
    ("starts_at", "written"),
    [
        (datetime(2026, 1, 12, 9, 0, tzinfo=WARSAW), "20260112T080000Z"),
        (datetime(2026, 7, 1, 9, 0, tzinfo=WARSAW), "20260701T070000Z"),  # summer time
        (datetime(2026, 1, 12, 9, 0), "20260112T090000Z"),  # naive: UTC
        (datetime(2026, 1, 12, 23, 30, tzinfo=timezone(-timedelta(hours=5))), "20260113T043000Z"),
    ],
)
def test_times_are_utc_with_z(starts_at: datetime, written: str):
    text = calendar(event(starts_at=starts_at, ends_at=starts_at + timedelta(minutes=20)), STAMP)
    assert f"DTSTART:{written}" in text.split("\r\n")
    vevent, _ = ics_reader.parse(text)
    aware = starts_at if starts_at.tzinfo else starts_at.replace(tzinfo=UTC)
    assert vevent.decoded("DTSTART") == aware


def test_text_values_are_escaped():
    text = calendar(event(summary="a,b;c\\d\ne", description="line\r\nnext"), STAMP)
    lines = text.split("\r\n")
    assert "SUMMARY:a\\,b\\;c\\\\d\\ne" in lines
    assert "DESCRIPTION:line\\nnext" in lines
    vevent, _ = ics_reader.parse(text)
    assert vevent["SUMMARY"] == "a,b;c\\d\ne" and vevent["DESCRIPTION"] == "line\nnext"


def test_long_lines_fold_at_75_octets_never_inside_a_character():
    summary = "Wiśniewska Skóra Umysł 🩺 " * 8
    description = "abcdefghij" * 20
    text = calendar(event(summary=summary, description=description), STAMP)
    physical = text.split("\r\n")
    folded = [line for line in physical if line.startswith(" ")]
    assert len(folded) >= 4  # both values span several lines
    vevent, _ = ics_reader.parse(text)  # <= 75 octets each, UTF-8 intact
    assert vevent["SUMMARY"] == summary and vevent["DESCRIPTION"] == description


@given(st.text(min_size=0, max_size=400))
def test_any_description_reads_back_the_same(value):
    vevent, _ = ics_reader.parse(calendar(event(description=value), STAMP))
    # A line break is one in any convention; it is written as \n. icalendar also takes a typed
    # backslash and N for one (its escape_char, on purpose): Hypothesis found it.
    expected = value.replace("\\N", "\n").replace("\r\n", "\n").replace("\r", "\n")
    assert vevent["DESCRIPTION"] == expected


def test_a_cancelled_booking_keeps_its_uid_and_says_so():
    vevent, _ = ics_reader.parse(calendar(event(cancelled=True), stamp=STAMP))
    assert vevent["UID"] == "booking-7@consult"
    assert vevent["STATUS"] == "CANCELLED" and vevent["SEQUENCE"] == 1
