"""The shape of a kind of thing in the timeline: where its rows come from for one patient and
reader (a ``Source``: the page's union query orders and cuts them), and how a page's items of
that kind are read whole (its loader: a few statements for them all, whatever their number).
The kinds themselves are in registry.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from consult.domain import Actor
from consult.storage.uow import UnitOfWork
from consult.timeline.schemas import TimelineEntryOut


@dataclass(frozen=True)
class Scope:
    """Whose timeline, read by whom, when (prescriptions' statuses are as of ``now``)."""

    patient_id: int
    reader: Actor
    now: datetime


@dataclass(frozen=True)
class Source:
    """A kind's rows for one scope: FROM ``froms`` WHERE ``where``, each row known by when it
    happened (``at``) and its ``id``. An index on (patient, at, id) lets a page read only its
    own rows (migration 0017)."""

    froms: sa.FromClause
    at: sa.ColumnElement[datetime]
    id: sa.ColumnElement[int]
    where: tuple[sa.ColumnElement[bool], ...]


# An item's fields but kind, id and occurred_at (the page sets those), by the thing's id.
Fields = dict[str, Any]
Loader = Callable[[UnitOfWork, list[int], Scope], Awaitable[dict[int, Fields]]]


@dataclass(frozen=True)
class Kind:
    name: str
    model: type[TimelineEntryOut]
    source: Callable[[Scope], Source]
    load: Loader
    # A doctor of the patient's sees it (ratings are the patient's alone: a doctor's own
    # ratings name no patient to them, docs/architecture.md "Ratings").
    doctors: bool = True

    def visible_to(self, reader: Actor) -> bool:
        return reader.is_patient or self.doctors
