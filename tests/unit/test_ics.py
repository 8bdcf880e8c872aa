"""iCalendar formatting: escaping, folding, CRLF, UTC times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from consult.booking.ics import CalendarEvent, calendar, escape_text, fold, unfold, utc_time
from tests import ics_reader

WARSAW = ZoneInfo("Europe/Warsaw")


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


def test_text_values_are_escaped():
    assert escape_text("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"
    assert escape_text("line\r\nnext") == "line\\nnext"
    assert escape_text("plain: text") == "plain: text"  # a colon needs no escape in a value


def test_times_are_utc_with_z():
    assert utc_time(datetime(2026, 1, 12, 9, 0, tzinfo=WARSAW)) == "20260112T080000Z"
    assert utc_time(datetime(2026, 7, 1, 9, 0, tzinfo=WARSAW)) == "20260701T070000Z"  # summer
    assert utc_time(datetime(2026, 1, 12, 9, 0)) == "20260112T090000Z"  # naive: UTC
    assert utc_time(datetime(2026, 1, 12, 23, 30, tzinfo=timezone(-timedelta(hours=5)))) == (
        "20260113T043000Z"
    )


def test_short_lines_are_not_folded():
    assert fold("SUMMARY:short") == "SUMMARY:short"
    line = "X:" + "a" * 73
    assert fold(line) == line  # exactly 75 octets


def test_long_lines_fold_at_75_octets():
    line = "DESCRIPTION:" + "abcdefghij" * 20
    folded = fold(line)
    physical = folded.split("\r\n")
    assert [len(p.encode()) for p in physical] == [
        75,
        75,
        64,
    ]  # 212 octets: 75 + (1 + 74) + (1 + 63)
    assert all(p.startswith(" ") for p in physical[1:])
    assert unfold(folded + "\r\n") == [line]


def test_folding_never_splits_a_multibyte_character():
    line = "SUMMARY:" + "Wiśniewska Skóra Umysł 🩺 " * 8
    folded = fold(line)
    for physical in folded.split("\r\n"):
        assert len(physical.encode()) <= 75
    assert unfold(folded + "\r\n") == [line]


@given(st.text(min_size=0, max_size=400))
def test_fold_then_unfold_is_the_identity(value):
    line = "DESCRIPTION:" + escape_text(value)
    folded = fold(line)
    assert all(len(p.encode()) <= 75 for p in folded.split("\r\n"))
    assert unfold(folded + "\r\n") == [line]


def test_calendar_has_one_event_with_the_booking():
    text = calendar(event(), stamp=datetime(2026, 1, 5, 10, 0, 1, tzinfo=UTC))
    assert text.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:")
    assert text.endswith("END:VEVENT\r\nEND:VCALENDAR\r\n")
    vevent, vcalendar = ics_reader.parse(text)
    assert vcalendar["name"] == "VCALENDAR" and vcalendar["VERSION"] == "2.0"
    assert vevent["name"] == "VEVENT"
    assert vevent["UID"] == "booking-7@consult"
    assert vevent["DTSTAMP"] == "20260105T100001Z"
    assert vevent["DTSTART"] == "20260112T080000Z"
    assert vevent["DTEND"] == "20260112T082000Z"
    assert vevent["SUMMARY"] == "Dermatology: Dr Iwona Skóra"
    assert vevent["DESCRIPTION"] == "Visit; bring results, a list of medicines\nand your card."
    assert vevent["STATUS"] == "CONFIRMED" and vevent["SEQUENCE"] == "0"
    assert "DESCRIPTION:Visit\\; bring results\\, a list of medicines\\nand your card." in text


def test_a_cancelled_booking_keeps_its_uid_and_says_so():
    vevent, _ = ics_reader.parse(
        calendar(event(cancelled=True), stamp=datetime(2026, 1, 5, tzinfo=UTC))
    )
    assert vevent["UID"] == "booking-7@consult"
    assert vevent["STATUS"] == "CANCELLED" and vevent["SEQUENCE"] == "1"
