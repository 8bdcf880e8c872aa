"""The ratings' rules and arithmetic without a database: the 7 days a rating may change, a
booked visit rated once over, the averages, distributions and the summary's grouping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consult.errors import Conflict
from consult.ratings.figures import Tally, figures, summarise
from consult.ratings.policy import RatingKind, check_changeable, check_visit_over
from consult.ratings.schemas import RatingIn

RATED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_a_rating_changes_for_exactly_7_days() -> None:
    check_changeable(RATED, RATED + timedelta(days=7))  # the last instant still allowed
    with pytest.raises(Conflict) as refused:
        check_changeable(RATED, RATED + timedelta(days=7, seconds=1))
    assert refused.value.code == "rating_locked"
    assert refused.value.details == {"changeable_until": "2026-12-08T10:00:00Z"}


def test_a_booked_visit_is_over_at_its_slots_end() -> None:
    ends = RATED
    check_visit_over(ends, ends)
    with pytest.raises(Conflict) as refused:
        check_visit_over(ends, ends - timedelta(seconds=1))
    assert refused.value.code == "visit_not_over"


def test_figures_count_average_and_distribution() -> None:
    assert figures({}).model_dump() == {"count": 0, "average": None, "distribution": [0] * 5}
    got = figures({1: 1, 5: 2})
    assert (got.count, got.average, got.distribution) == (3, 3.67, [1, 0, 0, 0, 2])
    assert figures({4: 3}).average == 4.0


def tally(code: str, doctor: int, kind: RatingKind, score: int, n: int) -> Tally:
    names = {"im": "Internal medicine", "derm": "Dermatology"}
    return Tally(code, names[code], doctor, f"Dr {doctor}", kind, score, n)


def test_the_summary_groups_by_specialty_and_doctor_sorted_by_name() -> None:
    c, s = RatingKind.CONSULTATION, RatingKind.SERVICE
    tallies = [
        tally("im", 2, c, 5, 1),
        tally("im", 1, c, 1, 1),
        tally("derm", 1, c, 4, 2),
        tally("derm", 1, s, 3, 1),
    ]
    out = summarise(tallies, RATED - timedelta(days=30), RATED)
    assert [x.specialty.code for x in out.specialties] == ["derm", "im"]  # by name
    assert [x.doctor.id for x in out.doctors] == [1, 2]
    im = out.specialties[1].figures
    assert (im.consultation.count, im.consultation.average) == (2, 3.0)
    assert im.service.count == 0 and im.booking.average is None
    assert out.doctors[0].figures.consultation.distribution == [1, 0, 0, 2, 0]
    assert out.overall.consultation.count == 4 and out.overall.service.average == 3.0


@pytest.mark.parametrize("score", [0, 6, 2.5, "3", True, None])
def test_a_score_is_a_whole_number_from_1_to_5(score: object) -> None:
    with pytest.raises(ValueError):
        RatingIn.model_validate({"score": score})


def test_a_comment_is_stripped_and_at_most_1000_characters() -> None:
    assert RatingIn.model_validate({"score": 4.0, "comment": "  ok "}).comment == "ok"
    assert RatingIn.model_validate({"score": 1}).comment == ""
    with pytest.raises(ValueError):
        RatingIn.model_validate({"score": 3, "comment": "x" * 1001})
