"""The PostgreSQL ``BatchStore``: the common case in one statement and one round trip, with no
transaction of our own; the rest by the careful store (batch_store.py states the rule)."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql

from consult.audit import COLUMNS, Audit
from consult.chat.batch_careful import CarefulStore
from consult.chat.batch_store import (
    Draft,
    Key,
    StoredBatch,
    built_out,
    message_row,
    write_entry,
)
from consult.domain import ConsultationStatus
from consult.errors import Unavailable
from consult.schemas import MessageOut
from consult.storage import tables as t
from consult.storage.pg_errors import StatementRefused, fetch_all_or_nothing

log = logging.getLogger(__name__)

# The audit rows' columns, arrays of the types audit_log declares, from $5 on; each message's
# entry (``Audit.entry``, through ``write_entry``) gives the values, but for the patient,
# which the statement takes from the consultation.
_AUDIT_ARRAYS = ", ".join(
    f"${5 + k}::{t.audit_log.c[name].type.compile(dialect=postgresql.dialect())}[]"
    for k, name in enumerate(COLUMNS)
)
_AUDIT_NAMES = ", ".join(f"a_{name}" for name in COLUMNS)
_AUDIT_VALUES = ", ".join(
    "coalesce(d.a_patient_id, r.patient_id)" if name == "patient_id" else f"d.a_{name}"
    for name in COLUMNS
)
_AT = f"${5 + len(COLUMNS)}"
_ACTIVE = f"${6 + len(COLUMNS)}"

# Per consultation, all or nothing: its messages are stored only if the consultation is active
# and every sender is a party; the others are left for the careful store, which tells each
# message's outcome. A client id stored already (a retry) makes the insert, and so the whole
# statement, fail on ``uq_messages_client_id``: nothing is stored, and the careful store sorts
# the batch out. (Looking the client ids up first read ``messages`` with the plan made when the
# connection first prepared the statement: on a new database, a sequential scan that grew with
# the table.) The rows are locked in id order (``locked``), as ``lock_consultations`` does, so
# two batches never wait on each other in a cycle; a row changed while we waited for its lock
# is checked again (READ COMMITTED), so a consultation that ended meanwhile is left out.
# Arrays, not one parameter per value: the text is the same for every batch size, so asyncpg
# prepares it once per connection.
POST_NEW_MESSAGES = f"""
WITH drafts AS (
    SELECT * FROM unnest($1::int[], $2::int[], $3::text[], $4::text[], {_AUDIT_ARRAYS})
        WITH ORDINALITY AS d(consultation_id, sender_id, client_id, body, {_AUDIT_NAMES}, ord)
),
wanted AS (
    SELECT consultation_id, count(*) AS n, array_agg(sender_id) AS senders
    FROM drafts
    GROUP BY consultation_id
),
locked AS MATERIALIZED (
    SELECT c.id, w.n
    FROM consultations c JOIN wanted w ON w.consultation_id = c.id
    WHERE c.status = {_ACTIVE} AND w.senders <@ ARRAY[c.patient_id, c.doctor_id]
    ORDER BY c.id
    FOR UPDATE OF c
),
reserved AS (
    UPDATE consultations c SET last_seq = c.last_seq + l.n
    FROM locked l WHERE c.id = l.id
    RETURNING c.id, c.patient_id, c.doctor_id, c.last_seq - l.n AS first_seq
),
inserted AS (
    INSERT INTO messages (consultation_id, seq, sender_id, client_id, body, created_at)
    SELECT d.consultation_id,
           r.first_seq + row_number() OVER (PARTITION BY d.consultation_id ORDER BY d.ord),
           d.sender_id, d.client_id, d.body, {_AT}
    FROM drafts d JOIN reserved r ON r.id = d.consultation_id
    RETURNING id, consultation_id, seq, sender_id, client_id
),
audited AS (
    INSERT INTO audit_log ({", ".join(COLUMNS)})
    SELECT {_AUDIT_VALUES}
    FROM drafts d JOIN reserved r ON r.id = d.consultation_id
    ORDER BY d.ord
)
SELECT i.id, i.consultation_id, i.seq, i.sender_id, i.client_id, r.patient_id, r.doctor_id
FROM inserted i JOIN reserved r ON r.id = i.consultation_id
"""


class PostgresStore(CarefulStore):
    """The careful store, for what one statement leaves."""

    async def store(self, batch: list[Draft]) -> StoredBatch:
        try:
            stored, rest = await self._in_one_statement(batch)
        except Unavailable as exc:  # the careful store would only meet the same outage
            return StoredBatch([(draft, exc) for draft in batch])
        except Exception as exc:
            # The statement is all-or-nothing: nothing of it was stored.
            log.warning("chat batch of %d failed in one statement (%r)", len(batch), exc)
            return await super().store(batch)
        if rest:
            stored.add(await super().store(rest))
        return stored

    async def _in_one_statement(self, batch: list[Draft]) -> tuple[StoredBatch, list[Draft]]:
        """The consultations that are active and whose senders are parties, stored; and the
        drafts left for the careful store (a refusal, a shared document, a client id twice in
        the batch, or the whole batch if a retry made PostgreSQL refuse the statement: rare),
        whole consultations at a time so that each one's sequence stays in arrival order."""
        keys = Counter(d.key for d in batch)
        aside = {d.consultation_id for d in batch if d.document_id is not None or keys[d.key] > 1}
        direct = [d for d in batch if d.consultation_id not in aside]
        now = self._clock.now()
        records = (await self.post_new(direct, now) or []) if direct else []
        found = {(r["consultation_id"], r["sender_id"], r["client_id"]): r for r in records}
        done = [d for d in direct if d.key in found]
        parties = {r["consultation_id"]: (r["patient_id"], r["doctor_id"]) for r in records}
        new_rows = [message_row(d, found[d.key]["seq"], now) for d in done]
        ids = [found[d.key]["id"] for d in done]
        stored: dict[Key, MessageOut] = {}
        events = built_out(done, parties, new_rows, ids, stored)
        rest = [d for d in batch if d.key not in found]
        return StoredBatch([(d, stored[d.key]) for d in done], events), rest

    async def post_new(self, drafts: list[Draft], now: datetime) -> list[Any] | None:
        """Runs ``POST_NEW_MESSAGES``: the stored messages (``id, consultation_id, seq,
        sender_id, client_id, patient_id, doctor_id``), or None if PostgreSQL refused the
        statement as a whole (nothing stored)."""
        audits = [write_entry(self._audit, d.actor, d.consultation_id, None, now) for d in drafts]
        try:
            return await fetch_all_or_nothing(
                self._db,
                POST_NEW_MESSAGES,
                [d.consultation_id for d in drafts],
                [d.actor.user_id for d in drafts],
                [d.client_id for d in drafts],
                [d.body for d in drafts],
                *Audit.columns(audits),
                now,
                ConsultationStatus.ACTIVE.value,
            )
        except StatementRefused:
            return None
