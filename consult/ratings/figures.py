"""The ratings' arithmetic (pure): counts by score -> count, average, distribution; tallies by
specialty, doctor and kind -> the summary."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from consult.ratings.policy import SCORES, RatingKind
from consult.ratings.schemas import (
    RatedSpecialtyOut,
    RatingDoctorFiguresOut,
    RatingFiguresOut,
    RatingKindFiguresOut,
    RatingSpecialtyFiguresOut,
    RatingsSummaryOut,
)
from consult.schemas import PersonOut

# kind -> score -> how many
Counts = Mapping[RatingKind, Mapping[int, int]]


@dataclass(frozen=True)
class Tally:
    """How many ratings of one kind gave one score, for one doctor in one specialty."""

    specialty_code: str
    specialty_name: str
    doctor_id: int
    doctor_name: str
    kind: RatingKind
    score: int
    count: int


def figures(by_score: Mapping[int, int]) -> RatingFiguresOut:
    distribution = [by_score.get(score, 0) for score in SCORES]
    count = sum(distribution)
    total = sum(score * n for score, n in zip(SCORES, distribution, strict=True))
    average = round(total / count, 2) if count else None
    return RatingFiguresOut(count=count, average=average, distribution=distribution)


def kind_figures(counts: Counts) -> RatingKindFiguresOut:
    return RatingKindFiguresOut(
        **{kind.value: figures(counts.get(kind, {})) for kind in RatingKind}
    )


def _add(into: dict[RatingKind, dict[int, int]], tally: Tally) -> None:
    by_score = into.setdefault(tally.kind, {})
    by_score[tally.score] = by_score.get(tally.score, 0) + tally.count


def counts_of(tallies: Iterable[Tally]) -> dict[RatingKind, dict[int, int]]:
    """All the tallies together, by kind and score."""
    counts: dict[RatingKind, dict[int, int]] = {}
    for tally in tallies:
        _add(counts, tally)
    return counts


def summarise(tallies: Iterable[Tally], since: datetime, until: datetime) -> RatingsSummaryOut:
    overall: dict[RatingKind, dict[int, int]] = {}
    specialties: defaultdict[tuple[str, str], dict[RatingKind, dict[int, int]]]
    specialties = defaultdict(dict)
    doctors: defaultdict[tuple[int, str], dict[RatingKind, dict[int, int]]] = defaultdict(dict)
    for tally in tallies:
        _add(overall, tally)
        _add(specialties[tally.specialty_code, tally.specialty_name], tally)
        _add(doctors[tally.doctor_id, tally.doctor_name], tally)
    return RatingsSummaryOut(
        since=since,
        until=until,
        overall=kind_figures(overall),
        specialties=[
            RatingSpecialtyFiguresOut(
                specialty=RatedSpecialtyOut(code=code, name=name), figures=kind_figures(counts)
            )
            for (code, name), counts in sorted(specialties.items(), key=lambda i: i[0][1])
        ],
        doctors=[
            RatingDoctorFiguresOut(
                doctor=PersonOut(id=did, name=name), figures=kind_figures(counts)
            )
            for (did, name), counts in sorted(doctors.items(), key=lambda i: (i[0][1], i[0][0]))
        ],
    )
