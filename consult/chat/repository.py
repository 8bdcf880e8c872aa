"""Message rows."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from consult.chat.shared_documents import MESSAGE_DOCUMENT_COLUMNS, message_document
from consult.clock import as_utc
from consult.schemas import MessageOut
from consult.storage import tables as t
from consult.storage.uow import UnitOfWork

_NO_ROW = -1  # an id no consultation has: fills a statement's unused slots

_MESSAGE = (
    sa.select(t.messages, t.users.c.role.label("sender_role"), *MESSAGE_DOCUMENT_COLUMNS)
    .join(t.users, t.users.c.id == t.messages.c.sender_id)
    # A document the patient shared with the message (documents/).
    .outerjoin(t.documents, t.documents.c.id == t.messages.c.document_id)
)


def message_out(row: Any) -> MessageOut:
    return MessageOut(
        id=row.id,
        consultation_id=row.consultation_id,
        seq=row.seq,
        sender_id=row.sender_id,
        sender_role=row.sender_role,
        client_id=row.client_id,
        body=row.body,
        created_at=as_utc(row.created_at),
        document=message_document(row),
    )


async def messages_after(
    uow: UnitOfWork, consultation_id: int, after_seq: int, limit: int
) -> tuple[list[MessageOut], bool]:
    """At most ``limit`` messages after ``after_seq`` in order, and whether more follow (one
    more row is read to tell)."""
    rows = (
        await uow.conn.execute(
            _MESSAGE.where(
                t.messages.c.consultation_id == consultation_id, t.messages.c.seq > after_seq
            )
            .order_by(t.messages.c.seq)
            .limit(limit + 1)
        )
    ).all()
    return [message_out(r) for r in rows[:limit]], len(rows) > limit


async def message_counts(uow: UnitOfWork, consultation_ids: list[int]) -> dict[int, int]:
    """How many messages each of these consultations holds, those with none left out."""
    c = t.consultations.c
    found = await uow.conn.execute(
        sa.select(c.id, c.last_seq).where(c.id.in_(consultation_ids), c.last_seq > 0)
    )
    return {r.id: r.last_seq for r in found}  # sequence numbers have no gaps


async def first_messages(
    uow: UnitOfWork, consultation_ids: list[int], count: int
) -> dict[int, tuple[list[MessageOut], bool]]:
    """The first ``count`` messages of each consultation, and whether more follow, in one
    statement: seqs run 1, 2, 3… without a gap (a batch's seqs are reserved and its messages
    inserted in one transaction), so they are the seqs up to ``count`` (one more tells)."""
    found: dict[int, tuple[list[MessageOut], bool]] = {cid: ([], False) for cid in consultation_ids}
    if not consultation_ids:
        return found
    rows = await uow.conn.execute(
        _MESSAGE.where(
            t.messages.c.consultation_id.in_(consultation_ids), t.messages.c.seq <= count + 1
        ).order_by(t.messages.c.consultation_id, t.messages.c.seq)
    )
    for r in rows:
        page, _ = found[r.consultation_id]
        if r.seq > count:
            found[r.consultation_id] = (page, True)
        else:
            page.append(message_out(r))
    return found


async def lock_consultations(uow: UnitOfWork, consultation_ids: list[int]) -> dict[int, Any]:
    """The consultations' rows, locked in id order (so two batches never wait on each other in
    a cycle); on SQLite the transaction already holds the write lock."""
    rows = await uow.conn.execute(
        sa.select(
            t.consultations.c.id,
            t.consultations.c.status,
            t.consultations.c.patient_id,
            t.consultations.c.doctor_id,
            t.consultations.c.last_seq,
        )
        .where(t.consultations.c.id.in_(sorted(consultation_ids)))
        .order_by(t.consultations.c.id)
        .with_for_update()
    )
    return {r.id: r for r in rows}


async def messages_by_client_ids(
    uow: UnitOfWork, keys: set[tuple[int, int, str]]
) -> dict[tuple[int, int, str], MessageOut]:
    """Stored messages among ``(consultation_id, sender_id, client_id)`` keys (retries)."""
    if not keys:
        return {}
    consultations = {k[0] for k in keys}
    client_ids = {k[2] for k in keys}
    rows = await uow.conn.execute(
        _MESSAGE.where(
            t.messages.c.consultation_id.in_(consultations),
            t.messages.c.client_id.in_(client_ids),
        )
    )
    found = {(r.consultation_id, r.sender_id, r.client_id): message_out(r) for r in rows}
    return {k: m for k, m in found.items() if k in keys}


async def insert_messages(uow: UnitOfWork, rows: list[dict[str, Any]]) -> list[int]:
    """Inserts in one multi-row statement; returns the new ids in the order of ``rows``."""
    if not rows:
        return []
    # Matched back by (consultation_id, seq), which is unique: asking SQLAlchemy to keep the
    # parameters' order instead makes it insert row by row on SQLite (five times slower).
    result = await uow.conn.execute(
        t.messages.insert().returning(
            t.messages.c.id, t.messages.c.consultation_id, t.messages.c.seq
        ),
        rows,
    )
    ids = {(r.consultation_id, r.seq): r.id for r in result}
    return [ids[(row["consultation_id"], row["seq"])] for row in rows]


async def set_last_seqs(uow: UnitOfWork, last_seqs: dict[int, int]) -> None:
    if not last_seqs:
        return
    await uow.conn.execute(
        t.consultations.update()
        .where(t.consultations.c.id == sa.bindparam("b_id"))
        .values(last_seq=sa.bindparam("b_seq")),
        [{"b_id": cid, "b_seq": seq} for cid, seq in last_seqs.items()],
    )


async def advance_read(uow: UnitOfWork, consultation_id: int, column: str, seq: int) -> None:
    """Moves one side's read receipt forward (never back)."""
    col = t.consultations.c[column]
    await uow.conn.execute(
        t.consultations.update()
        .where(t.consultations.c.id == consultation_id, col < seq)
        .values({column: seq})
    )


async def messages_by_ids(uow: UnitOfWork, ids: list[int]) -> list[MessageOut]:
    """The messages with these ids, in sequence order per consultation (as inserted)."""
    if not ids:
        return []
    rows = await uow.conn.execute(
        _MESSAGE.where(t.messages.c.id.in_(ids)).order_by(t.messages.c.id)
    )
    return [message_out(r) for r in rows]


@functools.cache
def _reserve_statement(size: int) -> Any:
    """``UPDATE … RETURNING`` adding ``:n<k>`` to the ``last_seq`` of consultation ``:i<k>``,
    for ``size`` slots. Built once per size, and sizes are powers of two (unused slots match no
    row): building the ``CASE`` from literals and its cache key at each batch, and compiling a
    statement for every batch size met, cost more than the update itself (chat_bench)."""
    c = t.consultations.c
    ids = [sa.bindparam(f"i{k}", type_=sa.Integer) for k in range(size)]
    whens = [(c.id == ids[k], sa.bindparam(f"n{k}", type_=sa.Integer)) for k in range(size)]
    return (
        t.consultations.update()
        .where(c.id.in_(ids))
        .values(last_seq=c.last_seq + sa.case(*whens, else_=0))
        .returning(c.id, c.status, c.patient_id, c.doctor_id, c.last_seq)
    )


async def reserve_seqs(uow: UnitOfWork, counts: dict[int, int]) -> dict[int, Any]:
    """Adds ``counts[id]`` to each consultation's ``last_seq`` in one statement, which also
    locks the rows; returns them (``last_seq`` as it is now, after the reservation)."""
    size = 1 << (len(counts) - 1).bit_length()
    ids = sorted(counts)
    params: dict[str, int] = {}
    for k in range(size):
        cid = ids[k] if k < len(ids) else _NO_ROW
        params[f"i{k}"] = cid
        params[f"n{k}"] = counts.get(cid, 0)
    return {r.id: r for r in await uow.conn.execute(_reserve_statement(size), params)}


_INSERT_NEW = (
    sqlite_insert(t.messages)
    .on_conflict_do_nothing(index_elements=["consultation_id", "sender_id", "client_id"])
    .returning(t.messages.c.id, t.messages.c.consultation_id, t.messages.c.seq)
)


async def insert_new_messages(uow: UnitOfWork, rows: list[dict[str, Any]]) -> list[int] | None:
    """SQLite: inserts the messages in one statement, skipping any whose client id is stored
    already; returns the new ids in the order of ``rows``, or None if any was skipped."""
    result = await uow.conn.execute(_INSERT_NEW, rows)
    ids = {(r.consultation_id, r.seq): r.id for r in result}
    if len(ids) != len(rows):
        return None
    return [ids[(row["consultation_id"], row["seq"])] for row in rows]
