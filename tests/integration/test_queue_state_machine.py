"""The queue's rules as a hypothesis state machine over the real services and a real database.

Each example runs on a fresh copy of the migrated SQLite template (and, in the second test, on
PostgreSQL), with five verified patients and four doctors of two specialties inserted directly.
Each step drives ``Services`` the way the edges do: join (specialty, form, preferred doctor,
language), leave, end, accept, decline, answer someone else's offer, go online / away /
offline, a console or a patient's socket dropping and coming back, the manual clock moved and
the sweeper run, a restart (new services on the same database). After every step the database
is read back and checked against:

- the reference model of ``tests/queue_model.py`` (the documented rules, predicting every
  consultation's status, doctor, rank, deadline and every doctor's presence);
- the requirements, independent of the model: one open consultation per patient; no offer
  beyond capacity; each offer went to an online, connected doctor who serves the ticket, and
  the published events replay exactly to the new state (no ticket offered twice per
  offering); no free suitable doctor sits beside a waiting ticket they serve, after any step;
  no offer overtakes an earlier-ranked ticket the doctor serves; no ticket is offered again to
  the doctor who declined it (or let it lapse) before the exclusion ends, and the first sweep
  after it ends may; a restart keeps every place.

The tests at the end replay, step by step, what the machine found (each was fixed in the
code): a newcomer overtaking an earlier patient after a decline or a console's return, a
ticket never dropped although its patient was gone, a doctor leaving with two offers
handing the later-ranked one to the only free doctor; and, the known gap the time-limited
decline exclusion closes, a ticket declined by its only doctor waiting forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from sqlalchemy.ext.asyncio import create_async_engine

from consult.bundle import Services, queue_rules
from consult.clock import ManualClock
from consult.errors import ConsultError
from consult.events import Event
from consult.schemas import PresenceIn, StartConsultationIn
from consult.settings import Settings
from consult.storage import tables as t
from tests import backends
from tests.queue_model import (
    DOCTORS,
    EXCLUSION,
    PATIENTS,
    SPECIALTIES,
    A,
    B,
    Model,
    Presence,
    Row,
    Snapshot,
    actor,
    build_services,
    check_capacity,
    check_event_log,
    check_liveness,
    check_offers,
    check_state,
    compare,
    offers_made,
    read_snapshot,
    seed,
)

T = TypeVar("T")

# Sweeps land on, just before and just after the offer (20 s), doctor (30 s), decline exclusion
# (EXCLUSION, 45 s) and patient (60 s) deadlines.
ADVANCES = (0, 1, 5, 10, 14, 15, 16, 19, 20, 21, 29, 30, 31, 59, 60, 61)


class Recorder:
    """Every event the bus publishes (after commit), in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)


class Backend:
    """Where one example's database comes from."""

    async def fresh(self) -> str:
        raise NotImplementedError

    async def done(self, url: str) -> None:
        pass


class SqliteBackend(Backend):
    """A copy of the migrated template, deleted afterwards."""

    def __init__(self, template: Path, directory: Path) -> None:
        self.template = template
        self.directory = directory

    async def fresh(self) -> str:
        return backends.sqlite_copy(self.template, self.directory)

    async def done(self, url: str) -> None:
        path = sa.make_url(url).database or ""
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


class PostgresBackend(Backend):
    """This run's PostgreSQL test database, emptied."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def fresh(self) -> str:
        await backends.truncate_postgres(self.url)
        return self.url


# --- steps -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One action, printed as the method call it makes (in falsifying examples)."""

    name: str
    args: tuple[tuple[str, Any], ...]

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.args)})"


def step(name: str, **args: st.SearchStrategy[Any]) -> st.SearchStrategy[Step]:
    return st.fixed_dictionaries(args).map(lambda kw: Step(name, tuple(kw.items())))


doctors = st.sampled_from(sorted(DOCTORS))
patients = st.sampled_from(PATIENTS)
pick = st.integers(0, 4)

# One rule drawing from weighted actions, rather than one rule per action: hypothesis's swarm
# testing would switch rules off at random and spend whole examples restarting or sweeping.
WEIGHTED_STEPS: list[tuple[int, st.SearchStrategy[Step]]] = [
    (
        6,
        step(
            "join",
            patient=patients,
            specialty=st.sampled_from(SPECIALTIES),
            form=st.sampled_from(["chat", "chat", "chat", "voice"]),
            preferred=st.sampled_from([None] * 6 + sorted(DOCTORS)),
            language=st.sampled_from([None, None, None, "pl", "en"]),
        ),
    ),
    (
        4,
        step(
            "go_online",
            doctor=doctors,
            which=st.integers(0, 2),
            unpractised=st.sampled_from([False, False, False, False, True]),
            forms=st.sampled_from([["chat"], ["chat"], ["chat", "voice"], ["voice"]]),
            capacity=st.sampled_from([None, 1, 2, 3]),
            languages=st.sampled_from([[], [], [], ["pl"], ["en", "pl"]]),
        ),
    ),
    (3, step("accept", pick=pick)),
    (3, step("advance_and_sweep", seconds=st.sampled_from(ADVANCES))),
    (4, step("decline", pick=pick)),
    (3, step("doctor_ends", pick=pick)),
    (2, step("patient_ends", patient=patients)),
    (1, step("go_offline_or_away", doctor=doctors, away=st.booleans())),
    (1, step("doctor_connection", doctor=doctors)),
    (1, step("patient_connection", patient=patients)),
    (1, step("answer_what_is_not_theirs", doctor=doctors, pick=pick, how=st.integers(0, 2))),
    (1, step("restart")),
]
STEPS = st.one_of(*(s for weight, s in WEIGHTED_STEPS for _ in range(weight)))


class QueueMachine(RuleBasedStateMachine):
    backend: Backend  # set by each test before running

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.clock = ManualClock()
        self.rules = queue_rules(Settings(decline_exclusion=EXCLUSION))
        self.model = Model(self.rules)
        self.recorder = Recorder()
        self.connected = {uid: True for uid in (*PATIENTS, *DOCTORS)}
        self.url = self.run(self.backend.fresh())
        self.checker = create_async_engine(self.url)
        self.run(seed(self.checker, self.clock.now()))
        self.services = self._build()
        self.snap = self.run(self._read())

    @rule(action=STEPS)
    def step(self, action: Step) -> None:
        getattr(self, action.name)(**dict(action.args))

    # --- plumbing ---------------------------------------------------------------------------

    def run(self, coro: Awaitable[T]) -> T:
        return self.runner.run(coro)  # type: ignore[arg-type]

    def _build(self) -> Services:
        services = build_services(self.url, self.clock)
        services.bus.subscribe(self.recorder)
        return services

    async def _read(self) -> Snapshot:
        async with self.checker.connect() as conn:
            return await read_snapshot(conn)

    def teardown(self) -> None:
        try:
            self.run(self.services.db.dispose())
            self.run(self.checker.dispose())
            self.run(self.backend.done(self.url))
        finally:
            self.runner.close()

    def act(
        self,
        what: str,
        call: Callable[[], Awaitable[Any]],
        model: Callable[[Snapshot, Any], Snapshot | None] | None = None,
        *,
        error: str | None = None,
    ) -> Any:
        """Run one service call, then check the new state against the model and the rules.
        ``model(copy_of_before, result)`` changes the copy into the predicted state (a refused
        call must change nothing)."""
        before = self.snap
        self.recorder.events.clear()
        result, got = None, None
        try:
            result = self.run(call())
        except ConsultError as exc:
            got = exc.code
        assert got == error, f"{what}: expected error {error!r}, got {got!r}"
        if got is not None:
            event(f"refused: {got}")
        after = self.run(self._read())
        expected = before.copy()
        if model is not None and error is None:
            expected = model(expected, result) or expected
        events = list(self.recorder.events)
        for kind in sorted({_kind(e) for e in events}):
            event(kind)
        for d, cid in offers_made(events):
            if d in before.rows.get(cid, after.rows[cid]).exclusions:
                event("offered again to a doctor who declined it")
            if len(before.rows.get(cid, after.rows[cid]).exclusions) > 1:
                event("offered while several doctors had declined it")
        compare(expected, after, what)
        check_state(after, PATIENTS, DOCTORS)
        check_capacity(before, after, events)
        now = self.clock.now()
        check_offers(before, after, events, now)
        check_liveness(after, now)
        check_event_log(before, after, events)
        self.snap = after
        return result

    def _with(self, status: str) -> list[Row]:
        return sorted(
            (r for r in self.snap.rows.values() if r.status == status), key=lambda r: r.id
        )

    # --- patients ---------------------------------------------------------------------------

    def join(
        self, patient: int, specialty: str, form: str, preferred: int | None, language: str | None
    ) -> None:
        request = StartConsultationIn(
            specialty=specialty,
            form=form,  # type: ignore[arg-type]
            preferred_doctor_id=preferred,
            language=language,
        )
        error = None
        if preferred is not None and specialty not in DOCTORS[preferred]:
            error = "unknown_doctor"
        elif self.snap.open_of(patient):
            error = "already_in_consultation"
        now = self.clock.now()

        def model(s: Snapshot, ticket: Any) -> None:
            row = Row(
                id=ticket.consultation.id,
                patient_id=patient,
                doctor_id=None,
                specialty=specialty,
                form=form,
                status="waiting",
                created_at=now,
                rank_at=now,
                priority=0,
                preferred_doctor_id=preferred,
                language=language,
                declined_by=None,
                offer_expires_at=None,
                patient_disconnected_at=None,
            )
            s.rows[row.id] = row
            self.model.match_ticket(s, row, now)

        ticket = self.act(
            f"join({patient})",
            lambda: self.services.tickets.join(actor(patient), request),
            model,
            error=error,
        )
        if ticket is not None:  # the place shown is the place in the queue
            row = self.snap.rows[ticket.consultation.id]
            assert ticket.consultation.status == row.status
            assert ticket.place == _place(self.snap, row), (ticket.place, row)

    def patient_ends(self, patient: int) -> None:
        """Leave the queue (waiting or offered: cancelled) or end the consultation."""
        open_ = self.snap.open_of(patient)
        if open_:
            self._end(patient, open_[0].id)

    def patient_connection(self, patient: int) -> None:
        """The patient's only socket drops, or comes back."""
        now = self.clock.now()
        if self.connected[patient]:

            def dropped(s: Snapshot, _: Any) -> None:
                # Active consultations too: if the doctor is lost, the ticket that returns
                # still knows its patient is gone.
                for r in s.open_of(patient):
                    r.patient_disconnected_at = now

            self.act(
                f"patient {patient} disconnects",
                lambda: self.services.presence.disconnected(actor(patient)),
                dropped,
            )
        else:
            self.act(
                f"patient {patient} reconnects",
                lambda: self.services.presence.connected(actor(patient)),
                lambda s, _: self.model.patient_back(s, patient, now),
            )
        self.connected[patient] = not self.connected[patient]

    # --- doctors ----------------------------------------------------------------------------

    def go_online(
        self,
        doctor: int,
        which: int,
        unpractised: bool,
        forms: list[str],
        capacity: int | None,
        languages: list[str],
    ) -> None:
        """Online for one or all of the doctor's specialties (now and then with one they do not
        practise, which is refused)."""
        if not self.connected[doctor]:
            return  # presence is a socket event
        practised = DOCTORS[doctor]
        specialties = [practised[which]] if which < len(practised) else list(practised)
        error = None
        if unpractised and set(practised) != set(SPECIALTIES):
            specialties += [x for x in SPECIALTIES if x not in practised]
            error = "specialty_not_practised"
        now = self.clock.now()

        def model(s: Snapshot, _: Any) -> None:
            s.presence[doctor] = Presence(
                doctor_id=doctor,
                status="online",
                specialties=frozenset(specialties),
                forms=frozenset(forms),
                capacity=self.rules.capacity(forms, capacity),
                languages=frozenset(languages),
                disconnected_at=None,
            )
            self.model.match_doctor(s, doctor, now)

        request = PresenceIn(
            specialties=specialties,
            forms=forms,  # type: ignore[arg-type]
            capacity=capacity,
            languages=languages,
        )
        self.act(
            f"doctor {doctor} online",
            lambda: self.services.presence.go_online(actor(doctor), request),
            model,
            error=error,
        )

    def go_offline_or_away(self, doctor: int, away: bool) -> None:
        if not self.connected[doctor]:
            return
        status = "away" if away else "offline"
        now = self.clock.now()
        presence = self.services.presence
        call = presence.go_away if away else presence.go_offline
        self.act(
            f"doctor {doctor} {status}",
            lambda: call(actor(doctor)),
            lambda s, _: self.model.stop_taking(s, doctor, status, now),
        )

    def doctor_connection(self, doctor: int) -> None:
        """The console's only socket drops, or comes back."""
        now = self.clock.now()
        if self.connected[doctor]:

            def dropped(s: Snapshot, _: Any) -> None:
                p = s.presence.get(doctor)
                if p is not None:  # whatever the status: an away doctor may be consulting
                    p.disconnected_at = now

            self.act(
                f"doctor {doctor} disconnects",
                lambda: self.services.presence.disconnected(actor(doctor)),
                dropped,
            )
        else:
            self.act(
                f"doctor {doctor} reconnects",
                lambda: self.services.presence.connected(actor(doctor)),
                lambda s, _: self.model.doctor_back(s, doctor, now),
            )
        self.connected[doctor] = not self.connected[doctor]

    def accept(self, pick: int) -> None:
        offers = self._with("offered")
        if not offers:
            return
        row = offers[pick % len(offers)]
        cid, doctor = row.id, row.doctor_id
        assert doctor is not None

        def model(s: Snapshot, _: Any) -> None:
            s.rows[cid].status = "active"
            s.rows[cid].offer_expires_at = None

        self.act(
            f"doctor {doctor} accepts {cid}",
            lambda: self.services.consultations.accept(actor(doctor), cid),
            model,
        )

    def decline(self, pick: int) -> None:
        offers = self._with("offered")
        if not offers:
            return
        row = offers[pick % len(offers)]
        cid, doctor = row.id, row.doctor_id
        assert doctor is not None
        now = self.clock.now()

        self.act(
            f"doctor {doctor} declines {cid}",
            lambda: self.services.consultations.decline(actor(doctor), cid),
            lambda s, _: self.model.decline(s, s.rows[cid], now),
        )

    def doctor_ends(self, pick: int) -> None:
        active = self._with("active")
        if active:
            row = active[pick % len(active)]
            assert row.doctor_id is not None
            self._end(row.doctor_id, row.id)

    def answer_what_is_not_theirs(self, doctor: int, pick: int, how: int) -> None:
        """Accept, decline or end someone else's offer, or a ticket nobody was offered; or end
        one's own offer instead of answering it. Refused; nothing changes."""
        rows = [
            r
            for r in self.snap.rows.values()
            if r.status == "waiting"
            or (r.status == "offered" and (r.doctor_id != doctor or how == 2))
        ]
        if not rows:
            return
        row = sorted(rows, key=lambda r: r.id)[pick % len(rows)]
        consultations = self.services.consultations
        call = (consultations.accept, consultations.decline, consultations.end)[how]
        error = "not_participant" if how == 2 and row.doctor_id != doctor else "no_such_offer"
        cid = row.id
        self.act(
            f"doctor {doctor} {call.__name__} {cid} (not theirs)",
            lambda: call(actor(doctor), cid),
            error=error,
        )

    def _end(self, uid: int, cid: int) -> None:
        now = self.clock.now()

        def model(s: Snapshot, _: Any) -> None:
            row = s.rows[cid]
            row.status = "ended" if row.status == "active" else "cancelled"
            row.offer_expires_at = None
            if row.doctor_id is not None:
                self.model.match_doctor(s, row.doctor_id, now)

        self.act(
            f"user {uid} ends {cid}",
            lambda: self.services.consultations.end(actor(uid), cid),
            model,
        )

    # --- time and the process ---------------------------------------------------------------

    def advance_and_sweep(self, seconds: int) -> None:
        self.clock.advance(seconds)
        now = self.clock.now()
        self.act(
            f"sweep at +{seconds}s",
            self.services.sweeper.sweep,
            lambda s, _: self.model.sweep(s, now),
        )

    def restart(self) -> None:
        """A new process on the same database: every queued patient keeps their place."""
        before = self.run(self._places())
        self.run(self.services.db.dispose())
        self.services = self._build()
        self.act("restart", self._nothing)
        assert self.run(self._places()) == before

    async def _nothing(self) -> None:
        return None

    async def _places(self) -> dict[int, tuple[int, int]]:
        """Each queued patient's (ticket, place) as the services tell it, checked against the
        database's order."""
        places = {}
        for patient in PATIENTS:
            ticket = await self.services.tickets.ticket(actor(patient))
            if ticket is not None:
                places[patient] = (ticket.consultation.id, ticket.place)
        expected = {
            r.patient_id: (r.id, _place(self.snap, r))
            for r in self.snap.rows.values()
            if r.status in ("waiting", "offered")
        }
        assert places == expected
        return places


def _kind(e: Event) -> str:
    """For statistics: which kinds of things the examples reached."""
    reason = getattr(e, "reason", None)
    return type(e).__name__ + (f" ({reason})" if reason else "")


def _place(s: Snapshot, row: Row) -> int:
    """0 for an offered ticket, else 1 + the waiting tickets of its queue ahead of it."""
    if row.status == "offered":
        return 0
    return 1 + sum(
        1
        for w in s.waiting()
        if w.key < row.key and (w.specialty, w.form) == (row.specialty, row.form)
    )


MACHINE_SETTINGS = settings(
    max_examples=50,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    report_multiple_bugs=False,
)


def test_queue_rules_hold_in_every_reachable_state(sqlite_template: Path, tmp_path: Path) -> None:
    QueueMachine.backend = SqliteBackend(sqlite_template, tmp_path)
    run_state_machine_as_test(QueueMachine, settings=MACHINE_SETTINGS)


@pytest.mark.skipif("postgresql" not in backends.BACKENDS, reason="PostgreSQL not selected")
def test_queue_rules_hold_on_postgresql(postgres_url: str) -> None:
    QueueMachine.backend = PostgresBackend(postgres_url)
    run_state_machine_as_test(QueueMachine, settings=settings(MACHINE_SETTINGS, max_examples=15))


# --- regressions: what the machine found, step by step ------------------------------------------


class Scenario:
    """Services on a fresh SQLite copy, driven step by step."""

    def __init__(self, template: Path, directory: Path) -> None:
        self.url = backends.sqlite_copy(template, directory)
        self.clock = ManualClock()
        self.engine = create_async_engine(self.url)

    async def __aenter__(self) -> Scenario:
        await seed(self.engine, self.clock.now())
        self.s = build_services(self.url, self.clock)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.s.db.dispose()
        await self.engine.dispose()

    async def join(self, patient: int, specialty: str = B) -> int:
        self.clock.advance(1)
        request = StartConsultationIn(specialty=specialty, form="chat")  # type: ignore[arg-type]
        return (await self.s.consultations.start(actor(patient), request)).id

    async def status(self, cid: int) -> str:
        async with self.engine.connect() as conn:
            return (
                await conn.execute(
                    sa.select(t.consultations.c.status).where(t.consultations.c.id == cid)
                )
            ).scalar_one()


DERMATOLOGY_CHATS = PresenceIn(specialties=[B], forms=["chat"])  # type: ignore[list-item]


async def test_after_a_decline_a_newcomer_does_not_overtake_an_earlier_patient(
    sqlite_template: Path, tmp_path: Path
) -> None:
    async with Scenario(sqlite_template, tmp_path) as q:
        doctor = actor(203)  # the only dermatologist online
        await q.s.presence.go_online(doctor, DERMATOLOGY_CHATS)
        first = await q.join(101)  # offered to 203
        earlier = await q.join(102)  # waits: 203 is full
        await q.s.consultations.decline(doctor, first)  # 203 is free again, 102 still waits
        later = await q.join(103)
        assert (await q.status(earlier), await q.status(later)) == ("offered", "waiting")


async def test_after_a_console_reconnects_a_newcomer_does_not_overtake_an_earlier_patient(
    sqlite_template: Path, tmp_path: Path
) -> None:
    async with Scenario(sqlite_template, tmp_path) as q:
        doctor = actor(203)
        await q.s.presence.go_online(doctor, DERMATOLOGY_CHATS)
        await q.s.presence.disconnected(doctor)  # in the grace period: no new offers
        earlier = await q.join(102)  # waits
        q.clock.advance(5)
        await q.s.presence.connected(doctor)  # back within the grace: takes the front
        later = await q.join(103)
        assert (await q.status(earlier), await q.status(later)) == ("offered", "waiting")


async def test_an_interrupted_consultation_of_a_patient_long_gone_is_dropped(
    sqlite_template: Path, tmp_path: Path
) -> None:
    async with Scenario(sqlite_template, tmp_path) as q:
        doctor, patient = actor(203), actor(101)
        await q.s.presence.go_online(doctor, DERMATOLOGY_CHATS)
        cid = await q.join(101)
        await q.s.consultations.accept(doctor, cid)
        await q.s.presence.disconnected(patient)  # the patient's last socket drops
        await q.s.presence.disconnected(doctor)  # then the doctor's console
        q.clock.advance(31)
        await q.s.sweeper.sweep()
        assert await q.status(cid) == "waiting"  # back at the front, patient still gone
        q.clock.advance(61)  # 92 s after the patient left, 61 s after the ticket came back
        await q.s.sweeper.sweep()
        assert await q.status(cid) == "cancelled"


async def test_a_doctor_leaving_with_two_offers_hands_them_on_in_queue_order(
    sqlite_template: Path, tmp_path: Path
) -> None:
    chats = PresenceIn(specialties=[A], forms=["chat"], capacity=2)  # type: ignore[list-item]
    async with Scenario(sqlite_template, tmp_path) as q:
        await q.s.presence.go_online(actor(204), chats)
        later = await q.join(102, A)  # offered to 204, declined: waits, skipping 204
        await q.s.consultations.decline(actor(204), later)
        front = await q.join(101, A)  # offered to 204 and accepted
        await q.s.consultations.accept(actor(204), front)
        await q.s.presence.disconnected(actor(204))
        q.clock.advance(31)
        await q.s.sweeper.sweep()  # 204's lease ran out: ``front`` is back, a day ahead
        await q.s.presence.go_online(actor(201), chats)  # offered both, front first
        await q.s.presence.go_online(actor(202), PresenceIn(specialties=[A], forms=["chat"]))
        await q.s.presence.go_away(actor(201))  # both go back; 202 is the only free doctor
        assert (await q.status(front), await q.status(later)) == ("offered", "waiting")


async def test_a_ticket_declined_by_its_only_doctor_goes_back_to_them_when_the_exclusion_ends(
    sqlite_template: Path, tmp_path: Path
) -> None:
    async with Scenario(sqlite_template, tmp_path) as q:
        doctor = actor(203)  # the only dermatologist online
        await q.s.presence.go_online(doctor, DERMATOLOGY_CHATS)
        cid = await q.join(101)
        await q.s.consultations.decline(doctor, cid)
        q.clock.advance(EXCLUSION - 1)
        await q.s.sweeper.sweep()
        assert await q.status(cid) == "waiting"
        q.clock.advance(1)
        await q.s.sweeper.sweep()
        assert await q.status(cid) == "offered"
