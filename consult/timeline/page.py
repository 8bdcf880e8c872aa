"""Which items a timeline page holds: one statement, whatever the length of the history.

Each kind asked for contributes its rows after the cursor and within the dates, newest first,
at most a page of them (its own ORDER BY and LIMIT: with its (patient, time, id) index that
reads no more than the page); UNION ALL puts the kinds together and the outer ORDER BY and
LIMIT keep the page. Items are ordered by (occurred_at desc, the kind's rank, id desc): the rank
(its place in the registry, a number) rather than its name, so that both databases order alike
whatever their collation.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from consult.clock import as_utc
from consult.storage.uow import UnitOfWork
from consult.timeline.filters import Filters, Position
from consult.timeline.kinds import Source
from consult.timeline.registry import NAMES, RANK


async def keys(uow: UnitOfWork, sources: dict[str, Source], filters: Filters) -> list[Position]:
    """The page's items, in order, and one more when more follow (``filters.limit + 1``)."""
    count = filters.limit + 1
    parts = [_part(RANK[name], source, filters, count) for name, source in sources.items()]
    if not parts:
        return []
    page = parts[0] if len(parts) == 1 else sa.union_all(*parts).subquery("page").select()
    c = page.selected_columns
    rows = await uow.conn.execute(page.order_by(c.at.desc(), c.rank, c.id.desc()).limit(count))
    return [Position(as_utc(r.at), NAMES[r.rank], r.id) for r in rows]


def _part(rank: int, source: Source, filters: Filters, count: int) -> sa.Select[Any]:
    """One kind's rows of the page: a subquery with an ORDER BY and LIMIT of its own (a bare
    compound SELECT may have neither in its parts)."""
    where = list(source.where)
    if filters.since is not None:
        where.append(source.at >= filters.since)
    if filters.until is not None:
        where.append(source.at < filters.until)
    if filters.after is not None:
        where.append(_after(filters.after, rank, source))
    inner = (
        sa.select(
            source.at.label("at"),
            sa.literal_column(str(rank), sa.Integer).label("rank"),
            source.id.label("id"),
        )
        .select_from(source.froms)
        .where(*where)
        .order_by(source.at.desc(), source.id.desc())
        .limit(count)
        .subquery()
    )
    return sa.select(inner.c.at, inner.c.rank, inner.c.id)


def _after(position: Position, rank: int, source: Source) -> sa.ColumnElement[bool]:
    """This kind's rows that come after ``position`` in the page order. The kind is fixed
    within a part, so the condition is one of three simple ranges on (at, id)."""
    mark = RANK[position.kind]
    if rank > mark:  # after the position's kind at the same moment
        return source.at <= position.at
    if rank < mark:
        return source.at < position.at
    # The same as (at < t) OR (at = t AND id < i), with the range on ``at`` stated for the index.
    return sa.and_(
        source.at <= position.at, sa.or_(source.at < position.at, source.id < position.id)
    )
