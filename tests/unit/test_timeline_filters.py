"""The timeline's filters and cursor (pure): what a query string says, what is refused with
which code, a cursor read back as it was given; the registry and the payload union agree."""

from __future__ import annotations

import re
import typing
from datetime import UTC, datetime, timedelta, timezone

import pytest

from consult.errors import Invalid
from consult.timeline import filters as f
from consult.timeline.registry import KINDS, NAMES
from consult.timeline.schemas import TimelineItemOut


def parse(query: str) -> f.Filters:
    pairs = [tuple(p.split("=", 1)) for p in query.split("&") if p] if query else []
    return f.parse(pairs)  # type: ignore[arg-type]


def test_no_filter_is_every_kind_from_the_newest() -> None:
    assert parse("") == f.Filters(kinds=NAMES)
    assert parse("").described() is None


def test_kinds_given_with_commas_or_again_come_in_the_registrys_order() -> None:
    assert parse("kind=rating,consultation").kinds == ("consultation", "rating")
    assert parse("kind=referral&kind=prescription,referral").kinds == ("prescription", "referral")
    assert parse("kind=referral").described() == "kind=referral"


def test_days_and_moments_become_utc_bounds() -> None:
    day = parse("from=2026-12-01&to=2026-12-31")
    assert day.since == datetime(2026, 12, 1, tzinfo=UTC)
    assert day.until == datetime(2027, 1, 1, tzinfo=UTC)  # the whole 31st is in
    moment = parse("from=2026-12-01T08:30:00.25%2B01:00&to=2026-12-01T10:00Z".replace("%2B", "+"))
    assert moment.since == datetime(2026, 12, 1, 7, 30, 0, 250000, tzinfo=UTC)
    assert moment.until == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert moment.described() == "from=2026-12-01T07:30:00.250000Z to=2026-12-01T10:00:00Z"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("kind=ratings", "invalid_kind"),
        ("kind=", "invalid_kind"),
        ("kind=rating,,booking", "invalid_kind"),
        ("kind=Rating", "invalid_kind"),
        ("from=2026-1-01", "invalid_from"),
        ("from=2026-02-29", "invalid_from"),
        ("from=2026-12-01T08:00", "invalid_from"),
        ("from=2026-12-01T08:00+1:00", "invalid_from"),
        ("from=2026-12-01T08:00+24:00", "invalid_from"),
        ("from=0001-01-01T00:00+01:00", "invalid_from"),
        ("from=２０２６-12-01", "invalid_from"),
        ("to=2026-12-01T08:00:00.1234567Z", "invalid_to"),
        ("to=9999-12-31", "invalid_to"),
        ("to=2026-12-01&to=2026-12-02", "invalid_to"),
        ("from=2026-12-01&to=2026-11-30", "invalid_range"),
        ("from=2026-12-01T09:00%2B01:00&to=2026-12-01T08:00Z", "invalid_range"),
        ("cursor=", "invalid_cursor"),
        ("cursor=a b", "invalid_cursor"),
        ("cursor=YWJj", "invalid_cursor"),  # "abc"
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("limit=1e2", "invalid_limit"),
        ("limit=-1", "invalid_limit"),
        ("limit=5&limit=6", "invalid_limit"),
        ("page=2", "invalid_query"),
    ],
)
def test_a_bad_filter_is_refused_naming_it(query: str, code: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse(query.replace("%2B", "+"))
    assert refused.value.code == code


def test_the_patterns_say_what_is_taken() -> None:
    """The OpenAPI patterns: what matches is taken (or refused only by a rule the pattern
    cannot state, a real day), what does not is refused."""
    kind = re.compile(f.KIND_PATTERN)
    assert kind.fullmatch("rating,sick_leave") and not kind.fullmatch("rating,")
    moment = re.compile(f.MOMENT_PATTERN)
    for taken in ("2026-12-01", "2026-12-01T08:00Z", "2026-12-01T08:00:00.123456-05:30"):
        assert moment.fullmatch(taken)
        parse(f"from={taken}")
    assert not moment.fullmatch("2026-12-01T08:00")


def test_a_cursor_reads_back_as_given() -> None:
    for at in (
        datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
        datetime(2026, 12, 1, 8, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 12, 1, 9, 0, 0, 999999, tzinfo=timezone(timedelta(hours=1))),
    ):
        for kind in NAMES:
            position = f.Position(at, kind, 2**31 - 1)
            cursor = f.encode(position)
            assert re.fullmatch(f.CURSOR_PATTERN, cursor)
            assert f.decode(cursor) == position
            assert parse(f"cursor={cursor}").after == position
    with pytest.raises(Invalid):
        f.decode(f.encode(f.Position(datetime(2026, 1, 1, tzinfo=UTC), "consultation", 1))[:-2])


def test_every_kind_has_its_item_model_in_the_union() -> None:
    members = typing.get_args(typing.get_args(TimelineItemOut)[0])
    assert {k.model for k in KINDS} == set(members)
    for kind in KINDS:
        (literal,) = typing.get_args(kind.model.model_fields["kind"].annotation)
        assert literal == kind.name
    assert [k.name for k in KINDS if not k.doctors] == ["rating"]
