"""Every way of storing a chat batch keeps the one write rule (consult/chat/batch_store.py).

Hypothesis makes random sequences of batches: messages to active and ended consultations and to
one that does not exist, from their parties and from strangers (a patient and a doctor of other
consultations), client ids repeated within a batch and across batches (retries), some sharing a
document. Each sequence is stored by the database's own store (``SqliteStore`` or
``PostgresStore``) and, on consultations made alike, by the reference ``CarefulStore``; what a
user or an auditor could tell apart must be identical: each message's outcome (the stored
message, or the refusal and its code), the refusals noted for the edge, the pushed events, the
stored messages with their sequence numbers, each consultation's last sequence number, and the
audit rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from consult.audit import Audit
from consult.chat.batch_careful import CarefulStore
from consult.chat.batch_postgres import PostgresStore
from consult.chat.batch_sqlite import SqliteStore
from consult.chat.batch_store import BatchStore, Draft
from consult.clock import Clock, ManualClock, as_utc
from consult.domain import Actor, Client, Identity, Role
from consult.events import EventBus
from consult.schemas import MessageOut
from consult.storage import tables as t
from consult.storage.engine import create_engine
from consult.storage.uow import Database
from tests import backends

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
SLOTS = 3  # consultations per example; slot SLOTS is one that does not exist
MISSING = 999_999
SENDERS = ("patient", "doctor", "other patient", "other doctor")
EXAMPLES = {"sqlite": 100, "postgresql": 100}

MakeStore = Callable[[Database, Clock, Audit], BatchStore]


@dataclass(frozen=True)
class Message:
    slot: int
    sender: str
    client_id: str
    body: str
    document: bool


@dataclass(frozen=True)
class Plan:
    # Per slot: (which of the two doctors, active or ended); slot k's patient is patient k.
    consultations: tuple[tuple[int, bool], ...]
    batches: tuple[tuple[Message, ...], ...]


messages = st.builds(
    Message,
    # Mostly the common case: a party of an existing, active consultation.
    slot=st.integers(0, SLOTS - 1) | st.just(SLOTS),
    sender=st.sampled_from(SENDERS[:2]) | st.sampled_from(SENDERS),
    client_id=st.sampled_from("abcdefgh"),
    # Text PostgreSQL can store (the edges refuse the rest before it reaches a store).
    body=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8),
    document=st.sampled_from((False, False, False, True)),
)
plans = st.builds(
    Plan,
    consultations=st.tuples(
        *(st.tuples(st.integers(0, 1), st.booleans() | st.just(True)) for _ in range(SLOTS))
    ),
    batches=st.lists(st.lists(messages, min_size=1, max_size=10).map(tuple), max_size=4).map(tuple),
)


class World:
    """A patient per slot and two doctors (with a document each patient can share), on one
    database; each example makes consultations of its own for each store, and ends them after
    (a patient has one open consultation at a time)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.patients: list[Actor] = []
        self.doctors: list[Actor] = []
        self.documents: dict[int, int] = {}  # patient id -> document id

    async def setup(self) -> None:
        async with self.db.engine.begin() as conn:
            await conn.execute(t.specialties.insert().values(code="im", name="Internal"))
            for role, people, count in (
                (Role.PATIENT, self.patients, SLOTS),
                (Role.DOCTOR, self.doctors, 2),
            ):
                for k in range(count):
                    uid = await self._user(conn, f"{role}{k}", role)
                    # Each kind of client, so the audit rows' clients are compared too.
                    client = (Client.PAGE, Client.API, Client.SOCKET)[uid % 3]
                    people.append(
                        Actor(uid, role, Identity.VERIFIED, f"{role} {k}", f"10.0.0.{uid}", client)
                    )
            for patient in self.patients:
                self.documents[patient.user_id] = await _insert(
                    conn,
                    t.documents,
                    patient_id=patient.user_id,
                    stored_name=f"doc{patient.user_id}",
                    filename="scan.pdf",
                    description="a scan",
                    content_type="application/pdf",
                    size=3,
                    sha256="0" * 64,
                    created_at=START,
                )

    async def _user(self, conn: Any, name: str, role: Role) -> int:
        return await _insert(
            conn,
            t.users,
            email=f"{name}@stores.test",
            password_hash="x",
            role=str(role),
            identity="verified",
            name=name,
            created_at=START,
        )

    async def consultations(self, plan: Plan) -> list[int]:
        ids = []
        async with self.db.engine.begin() as conn:
            for patient, (doctor, active) in enumerate(plan.consultations):
                ids.append(
                    await _insert(
                        conn,
                        t.consultations,
                        patient_id=self.patients[patient].user_id,
                        doctor_id=self.doctors[doctor].user_id,
                        specialty_code="im",
                        form="chat",
                        status="active" if active else "ended",
                        created_at=START,
                    )
                )
        return ids

    def drafts(self, plan: Plan, batch: Sequence[Message], ids: list[int]) -> list[Draft]:
        made = []
        for m in batch:
            patient = min(m.slot, SLOTS - 1)
            doctor, _ = plan.consultations[patient]
            actor = {
                "patient": self.patients[patient],
                "doctor": self.doctors[doctor],
                "other patient": self.patients[(patient + 1) % SLOTS],
                "other doctor": self.doctors[1 - doctor],
            }[m.sender]
            cid = ids[m.slot] if m.slot < SLOTS else MISSING
            document = self.documents.get(actor.user_id) if m.document else None
            made.append(Draft(actor, cid, m.client_id, m.body, document_id=document, noted=[]))
        return made

    async def run(self, make: MakeStore, plan: Plan) -> dict[str, Any]:
        """Stores the plan's batches with a store made by ``make``; returns what it did, with
        consultation ids as slots and message ids as (slot, seq)."""
        ids = await self.consultations(plan)
        clock = ManualClock(START)
        store = make(self.db, clock, Audit(self.db, clock))
        outcomes: list[Any] = []
        events: list[Any] = []
        for batch in plan.batches:
            clock.advance(1)
            drafts = self.drafts(plan, batch, ids)
            stored = await store.store(drafts)
            assert sorted(id(d) for d, _ in stored.outcomes) == sorted(map(id, drafts))
            by_draft = {id(d): outcome for d, outcome in stored.outcomes}
            outcomes += [(_outcome(by_draft[id(d)]), tuple(d.noted or ())) for d in drafts]
            events += [(e.patient_id, e.doctor_id, dict(e.message)) for e in stored.events]
        return await self._read_back(ids, outcomes, events)

    async def _read_back(
        self, ids: list[int], outcomes: list[Any], events: list[Any]
    ) -> dict[str, Any]:
        slot = {cid: k for k, cid in enumerate(ids)} | {MISSING: SLOTS}
        async with self.db.engine.connect() as conn:
            stored = (
                await conn.execute(
                    sa.select(t.messages).where(t.messages.c.consultation_id.in_(ids))
                )
            ).all()
            last = (
                await conn.execute(
                    sa.select(t.consultations.c.id, t.consultations.c.last_seq).where(
                        t.consultations.c.id.in_(ids)
                    )
                )
            ).all()
            audited = (
                await conn.execute(
                    sa.select(t.audit_log).where(t.audit_log.c.consultation_id.in_([*ids, MISSING]))
                )
            ).all()
            await conn.execute(
                t.consultations.update().where(t.consultations.c.id.in_(ids)).values(status="ended")
            )
            await conn.commit()
        where = {r.id: (slot[r.consultation_id], r.seq) for r in stored}

        def message(m: dict[str, Any]) -> dict[str, Any]:
            return m | {"id": where[m["id"]], "consultation_id": slot[m["consultation_id"]]}

        return {
            "outcomes": [
                (message(o) if isinstance(o, dict) else o, noted) for o, noted in outcomes
            ],
            # Per consultation, in the order pushed.
            "events": sorted(
                ((p, d, message(m)) for p, d, m in events), key=lambda e: e[2]["consultation_id"]
            ),
            "messages": sorted(
                (
                    slot[r.consultation_id],
                    r.seq,
                    r.sender_id,
                    r.client_id,
                    r.body,
                    as_utc(r.created_at),
                    r.document_id,
                )
                for r in stored
            ),
            "last_seqs": sorted((slot[r.id], r.last_seq) for r in last),
            "audit": sorted(
                (
                    as_utc(r.at),
                    r.actor_id,
                    r.actor_role,
                    r.action,
                    r.patient_id,
                    slot[r.consultation_id],
                    r.ip,
                    r.allowed,
                    r.detail,
                    r.client,
                )
                for r in audited
            ),
        }


def _outcome(outcome: MessageOut | Exception) -> Any:
    if isinstance(outcome, MessageOut):
        return outcome.model_dump(mode="json")
    return (type(outcome).__name__, getattr(outcome, "code", None))


async def _insert(conn: Any, table: sa.Table, **values: Any) -> int:
    return (await conn.execute(table.insert().values(**values).returning(table.c.id))).scalar_one()


def check_against_careful(url: str, store: MakeStore, examples: int) -> None:
    with asyncio.Runner() as runner:
        db = Database(create_engine(url), EventBus())
        world = World(db)
        runner.run(world.setup())

        @settings(max_examples=examples, deadline=None, database=None)
        @given(plan=plans)
        def same_as_careful(plan: Plan) -> None:
            expected = runner.run(world.run(CarefulStore, plan))
            got = runner.run(world.run(store, plan))
            assert got == expected

        try:
            same_as_careful()
        finally:
            runner.run(db.dispose())


@pytest.mark.skipif("sqlite" not in backends.BACKENDS, reason="SQLite not selected")
def test_the_sqlite_store_stores_as_the_careful_one(sqlite_template: Path, tmp_path: Path) -> None:
    url = backends.sqlite_copy(sqlite_template, tmp_path)
    check_against_careful(url, SqliteStore, EXAMPLES["sqlite"])


@pytest.mark.skipif("postgresql" not in backends.BACKENDS, reason="PostgreSQL not selected")
def test_the_postgresql_store_stores_as_the_careful_one(postgres_url: str) -> None:
    asyncio.run(backends.truncate_postgres(postgres_url))
    check_against_careful(postgres_url, PostgresStore, EXAMPLES["postgresql"])
