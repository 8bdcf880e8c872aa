"""A reference model of the walk-in queue, for the state-machine and multi-process tests.

``Snapshot`` is the queue's state as read from the database (consultation rows and presence
rows). ``Model`` applies the documented queue rules (docs/architecture.md, "The walk-in queue")
to a snapshot to predict the next one; the state-machine test compares that prediction with
what the real services wrote. The ``check_*`` functions are the requirements of issue 3,
independent of how the model predicts: one open consultation per patient, capacity, each offer
made once per offering (from the event log), liveness after a sweep, and queue order.

Declines are modelled as documented: each doctor who declined a ticket (or let its offer lapse
while online with a connected console) is not offered it for ``EXCLUSION`` seconds of the
injected clock, after which any sweep may offer it to them again; a later decliner does not
end an earlier one's exclusion. An offer handed back because its doctor went away or offline,
or their console stayed disconnected, excludes nobody. The database keeps the exclusions in
``ticket_exclusions`` (one row per ticket and doctor, deleted by the sweep once it ran out);
here they are ``Row.exclusions``.

The small world both tests use (two specialties, five patients, four doctors, inserted
directly) is here too. Everything else is pure and synchronous, except ``read_snapshot``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from consult.bundle import Services
from consult.clock import Clock, as_utc
from consult.domain import Actor, Identity, Role
from consult.events import (
    ConsultationEnded,
    ConsultationInterrupted,
    ConsultationMatched,
    Event,
    EventBus,
    OfferMade,
    OfferWithdrawn,
    PresenceChanged,
    TicketDropped,
)
from consult.queue.policy import FRONT_PRIORITY, QueueRules
from consult.settings import Settings
from consult.storage import tables as t
from consult.storage.engine import create_engine
from consult.storage.uow import Database

# --- the world ---------------------------------------------------------------------------------

A, B = "internal-medicine", "dermatology"
SPECIALTIES = (A, B)
FORMS = ("chat", "voice")
PATIENTS = (101, 102, 103, 104, 105)
DOCTORS = {201: (A,), 202: (A, B), 203: (B,), 204: (A,)}
# Seconds a decline excludes its doctor: short enough for the machine's clock to run past it.
EXCLUSION = 15


async def seed(engine: AsyncEngine, now: datetime) -> None:
    """Two specialties, a plan covering them, the patients and the doctors, inserted directly
    into a migrated, empty database."""
    async with engine.begin() as conn:
        for code in SPECIALTIES:
            await conn.execute(t.specialties.insert().values(code=code, name=code.title()))
        await conn.execute(t.plans.insert().values(code="sm", name="State machine"))
        for code in SPECIALTIES:
            await conn.execute(
                t.plan_specialties.insert().values(plan_code="sm", specialty_code=code)
            )
        for uid in PATIENTS:
            await conn.execute(_user(uid, "patient", now))
        for uid, practised in DOCTORS.items():
            await conn.execute(_user(uid, "doctor", now))
            for code in practised:
                await conn.execute(
                    t.doctor_specialties.insert().values(doctor_id=uid, specialty_code=code)
                )


def _user(uid: int, role: str, now: datetime) -> sa.Insert:
    return t.users.insert().values(
        id=uid,
        email=f"{role}{uid}@machine.test",
        password_hash="x",
        role=role,
        identity="verified",
        name=f"{role} {uid}",
        plan_code="sm" if role == "patient" else None,
        created_at=now,
    )


def actor(uid: int) -> Actor:
    role = Role.PATIENT if uid in PATIENTS else Role.DOCTOR
    return Actor(uid, role, Identity.VERIFIED, f"{role} {uid}")


def build_services(url: str, clock: Clock) -> Services:
    """The services as a server process builds them (its own engine and pool), without the
    background sweeper: tests sweep by hand."""
    settings = Settings(
        database_url=url, migrate_on_start=False, sweep_interval=0, decline_exclusion=EXCLUSION
    )
    return Services.build(settings, clock, Database(create_engine(url), EventBus()))


# --- state ---------------------------------------------------------------------------------------

OPEN = ("waiting", "offered", "active")
QUEUED = ("waiting", "offered")


class InvariantViolation(AssertionError):
    """A requirement of the queue does not hold."""


class OrderViolation(InvariantViolation):
    """A doctor was offered a ticket while an earlier-ranked ticket they serve was waiting."""


class ModelMismatch(AssertionError):
    """The services did something other than what the documented rules predict."""


def _ts(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


@dataclass
class Row:
    id: int
    patient_id: int
    doctor_id: int | None
    specialty: str
    form: str
    status: str
    created_at: datetime
    rank_at: datetime
    priority: int
    preferred_doctor_id: int | None
    language: str | None
    declined_by: int | None
    offer_expires_at: datetime | None
    patient_disconnected_at: datetime | None
    # Doctor -> when their exclusion from this ticket ends (``ticket_exclusions``: kept, also
    # once over or once the ticket has left the queue, until a sweep after the end).
    exclusions: dict[int, datetime] = field(default_factory=dict)

    @property
    def key(self) -> tuple[datetime, int]:
        """Queue order: ascending (rank_at, id)."""
        return (self.rank_at, self.id)

    def excludes(self, doctor_id: int, now: datetime) -> bool:
        """The doctor declined this ticket (or let it lapse) less than the exclusion ago."""
        ends = self.exclusions.get(doctor_id)
        return ends is not None and now < ends

    def essentials(self) -> dict[str, Any]:
        """The fields the model predicts (the doctor only while the consultation is open)."""
        return {
            "status": self.status,
            "doctor_id": self.doctor_id if self.status in ("offered", "active") else None,
            "declined_by": self.declined_by,
            "priority": self.priority,
            "rank_at": self.rank_at,
            # Only an offer's deadline: cleared whenever the offer ends.
            "offer_expires_at": self.offer_expires_at,
            "exclusions": dict(sorted(self.exclusions.items())),
            "patient_disconnected_at": self.patient_disconnected_at
            if self.status in OPEN
            else None,
        }


@dataclass
class Presence:
    doctor_id: int
    status: str
    specialties: frozenset[str]
    forms: frozenset[str]
    capacity: int
    languages: frozenset[str]
    disconnected_at: datetime | None

    @property
    def eligible(self) -> bool:
        """May get new offers: online and the console connected (not in its grace period)."""
        return self.status == "online" and self.disconnected_at is None

    def serves(self, row: Row, now: datetime) -> bool:
        """Would take this ticket at ``now``, capacity aside (``DoctorSlot.serves`` as
        documented); never a ticket whose patient has no connection (in their grace)."""
        return (
            row.patient_disconnected_at is None
            and row.specialty in self.specialties
            and row.form in self.forms
            and row.preferred_doctor_id in (None, self.doctor_id)
            and (row.language is None or not self.languages or row.language in self.languages)
            and not row.excludes(self.doctor_id, now)
        )

    def essentials(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "specialties": sorted(self.specialties),
            "forms": sorted(self.forms),
            "capacity": self.capacity,
            "languages": sorted(self.languages),
            "disconnected_at": self.disconnected_at,
        }


@dataclass
class Snapshot:
    rows: dict[int, Row] = field(default_factory=dict)
    presence: dict[int, Presence] = field(default_factory=dict)

    def copy(self) -> Snapshot:
        return copy.deepcopy(self)

    def load(self, doctor_id: int) -> int:
        return sum(
            1
            for r in self.rows.values()
            if r.doctor_id == doctor_id and r.status in ("offered", "active")
        )

    def free(self, doctor_id: int) -> int:
        p = self.presence.get(doctor_id)
        if p is None or not p.eligible:
            return 0
        return max(0, p.capacity - self.load(doctor_id))

    def waiting(self) -> list[Row]:
        """Waiting tickets in queue order."""
        return sorted((r for r in self.rows.values() if r.status == "waiting"), key=lambda r: r.key)

    def open_of(self, patient_id: int) -> list[Row]:
        return [r for r in self.rows.values() if r.patient_id == patient_id and r.status in OPEN]

    def of_doctor(self, doctor_id: int, status: str) -> list[Row]:
        return sorted(
            (r for r in self.rows.values() if r.doctor_id == doctor_id and r.status == status),
            key=lambda r: r.id,
        )

    def idle_pairs(self, now: datetime) -> set[tuple[int, int]]:
        """(doctor, ticket): an eligible doctor with free capacity beside a waiting ticket they
        serve. Liveness says there are none."""
        return {
            (p.doctor_id, r.id)
            for p in self.presence.values()
            if self.free(p.doctor_id) > 0
            for r in self.waiting()
            if p.serves(r, now)
        }


async def read_snapshot(conn: AsyncConnection) -> Snapshot:
    c = t.consultations.c
    e = t.ticket_exclusions.c
    exclusions: dict[int, dict[int, datetime]] = {}
    for x in await conn.execute(sa.select(t.ticket_exclusions).order_by(e.ends_at)):
        exclusions.setdefault(x.consultation_id, {})[x.doctor_id] = as_utc(x.ends_at)
    rows = {
        r.id: Row(
            id=r.id,
            patient_id=r.patient_id,
            doctor_id=r.doctor_id,
            specialty=r.specialty_code,
            form=r.form,
            status=r.status,
            created_at=as_utc(r.created_at),
            rank_at=as_utc(r.rank_at),
            priority=r.priority,
            preferred_doctor_id=r.preferred_doctor_id,
            language=r.language,
            declined_by=r.declined_by,
            offer_expires_at=_ts(r.offer_expires_at),
            patient_disconnected_at=_ts(r.patient_disconnected_at),
            exclusions=exclusions.get(r.id, {}),
        )
        for r in await conn.execute(sa.select(t.consultations).order_by(c.id))
    }
    presence = {
        p.doctor_id: Presence(
            doctor_id=p.doctor_id,
            status=p.status,
            specialties=frozenset(p.specialties),
            forms=frozenset(p.forms),
            capacity=p.capacity,
            languages=frozenset(p.languages or ()),
            disconnected_at=_ts(p.disconnected_at),
        )
        for p in await conn.execute(sa.select(t.doctor_presence))
    }
    return Snapshot(rows, presence)


# --- the reference model ---------------------------------------------------------------------


class Model:
    """The documented rules, applied to a copy of a snapshot."""

    def __init__(self, rules: QueueRules) -> None:
        self.rules = rules

    def pick_doctor(self, s: Snapshot, row: Row, now: datetime) -> int | None:
        """A join or a decline: the free doctor with the most room, then the lowest id."""
        candidates = [
            p.doctor_id
            for p in s.presence.values()
            if s.free(p.doctor_id) > 0 and p.serves(row, now)
        ]
        return min(candidates, key=lambda d: (-s.free(d), d)) if candidates else None

    def offer(self, s: Snapshot, row: Row, doctor_id: int, now: datetime) -> None:
        row.status = "offered"
        row.doctor_id = doctor_id
        row.offer_expires_at = now + self.rules.offer_timeout

    def match_doctor(self, s: Snapshot, doctor_id: int, now: datetime) -> None:
        """A doctor freed or arrived: the first waiting tickets they serve, while room lasts."""
        p = s.presence.get(doctor_id)
        if p is None:
            return
        while s.free(doctor_id) > 0:
            row = next((r for r in s.waiting() if p.serves(r, now)), None)
            if row is None:
                return
            self.offer(s, row, doctor_id, now)

    def match_ticket(self, s: Snapshot, row: Row, now: datetime) -> None:
        doctor = self.pick_doctor(s, row, now)
        if doctor is not None:
            self.offer(s, row, doctor, now)

    def match_all(self, s: Snapshot, now: datetime) -> None:
        for doctor_id in sorted(s.presence):
            if s.free(doctor_id) > 0:
                self.match_doctor(s, doctor_id, now)

    def stop_taking(self, s: Snapshot, doctor_id: int, status: str, now: datetime) -> None:
        """Away or offline: the doctor's unanswered offers go back to the queue, and on to
        another doctor if one serves them, in queue order; consultations carry on. That says
        nothing about the patients: the doctor is not excluded from them."""
        offers = sorted(s.of_doctor(doctor_id, "offered"), key=lambda r: r.key)
        for row in offers:
            self.return_to_queue(s, row, now, exclude=False)
        if doctor_id in s.presence:
            s.presence[doctor_id].status = status
        for row in offers:
            self.match_ticket(s, row, now)

    def decline(self, s: Snapshot, row: Row, now: datetime) -> None:
        """The ticket keeps its place and goes to another doctor; the decliner, free again,
        takes the next ticket they serve."""
        doctor_id = row.doctor_id
        assert doctor_id is not None
        self.return_to_queue(s, row, now, exclude=True)
        self.match_ticket(s, row, now)
        self.match_doctor(s, doctor_id, now)

    def doctor_back(self, s: Snapshot, doctor_id: int, now: datetime) -> None:
        """A console back within its grace: the lease holds again and the doctor takes the
        front of the queue (after the grace, the sweeper has already ended the lease)."""
        p = s.presence.get(doctor_id)
        if p is not None and p.disconnected_at is not None:
            p.disconnected_at = None
            self.match_doctor(s, doctor_id, now)

    def patient_back(self, s: Snapshot, patient_id: int, now: datetime) -> None:
        """A patient's connection came back: their ticket may be offered again, at once."""
        for row in s.rows.values():
            if row.patient_id == patient_id:
                row.patient_disconnected_at = None
        for row in s.waiting():
            if row.patient_id == patient_id:
                self.match_ticket(s, row, now)

    def return_to_queue(self, s: Snapshot, row: Row, now: datetime, *, exclude: bool) -> None:
        """Back in its place. With ``exclude`` (a decline, or an offer lapsed while its doctor
        was online and connected) the doctor is not offered it again for the exclusion, from
        now, whatever exclusions of theirs or others' the ticket already had."""
        if exclude:
            assert row.doctor_id is not None
            row.declined_by = row.doctor_id
            row.exclusions[row.doctor_id] = now + self.rules.decline_exclusion
        row.status = "waiting"
        row.doctor_id = None
        row.offer_expires_at = None

    def sweep(self, s: Snapshot, now: datetime) -> Snapshot:
        s = s.copy()
        # A lapsed offer excludes its doctor only if they were there to answer (online, console
        # connected) when the sweep began: a doctor's first lapse sends them away, not their
        # second.
        attentive = {d for d, p in s.presence.items() if p.eligible}
        for row in sorted(s.rows.values(), key=lambda r: r.id):
            if row.status == "offered" and row.offer_expires_at <= now:
                # A lapsed offer sends the unresponsive doctor away (if still online).
                p = s.presence[row.doctor_id]
                if p.status == "online":
                    p.status = "away"
                self.return_to_queue(s, row, now, exclude=row.doctor_id in attentive)
        for p in sorted(s.presence.values(), key=lambda p: p.doctor_id):
            # A console gone for the grace period, whatever the status: online goes away, and
            # the doctor's patients go back (offers as offers, consultations to the front).
            if p.disconnected_at is not None and p.disconnected_at <= now - self.rules.doctor_grace:
                p.disconnected_at = None
                if p.status == "online":
                    p.status = "away"
                for row in list(s.of_doctor(p.doctor_id, "offered")):
                    self.return_to_queue(s, row, now, exclude=False)
                for row in list(s.of_doctor(p.doctor_id, "active")):
                    row.status = "waiting"
                    row.doctor_id = None
                    row.priority = FRONT_PRIORITY
                    row.rank_at = row.created_at - timedelta(minutes=FRONT_PRIORITY)
        for row in s.rows.values():
            if (
                row.status in QUEUED
                and row.patient_disconnected_at is not None
                and row.patient_disconnected_at <= now - self.rules.patient_grace
            ):
                row.status = "cancelled"
                row.offer_expires_at = None
        # Exclusions that ran out are deleted, whatever the ticket's status (their doctors may
        # be offered them again just below).
        for row in s.rows.values():
            row.exclusions = {d: ends for d, ends in row.exclusions.items() if now < ends}
        self.match_all(s, now)
        return s


# --- requirements, checked on what the services did ------------------------------------------


def check_state(s: Snapshot, patients: Iterable[int], doctors: Iterable[int]) -> None:
    """Invariants of any single state."""
    doctors = set(doctors)
    for patient in patients:
        open_ = s.open_of(patient)
        if len(open_) > 1:
            raise InvariantViolation(f"patient {patient} has {len(open_)} open consultations")
    for r in s.rows.values():
        if r.status in ("offered", "active"):
            if r.doctor_id not in doctors:
                raise InvariantViolation(f"consultation {r.id} ({r.status}) has no real doctor")
            if r.doctor_id not in s.presence:
                raise InvariantViolation(f"consultation {r.id}: doctor {r.doctor_id} never online")
        if r.status == "offered" and r.offer_expires_at is None:
            raise InvariantViolation(f"offered consultation {r.id} has no deadline")
        if r.status == "waiting" and r.doctor_id is not None:
            raise InvariantViolation(f"waiting consultation {r.id} still names a doctor")
    for d in doctors:
        if d not in s.presence and s.load(d):
            raise InvariantViolation(f"doctor {d} has consultations but no presence row")


def offers_made(events: Sequence[Event]) -> list[tuple[int, int]]:
    """(doctor, consultation) for each ``OfferMade`` published."""
    return [(e.doctor_id, e.consultation["id"]) for e in events if isinstance(e, OfferMade)]


def check_capacity(before: Snapshot, after: Snapshot, events: Sequence[Event]) -> None:
    """No offer takes a doctor beyond capacity; a doctor above capacity (having lowered it
    themselves) only ever comes down."""
    offered_to = {d for d, _ in offers_made(events)}
    for d, p in after.presence.items():
        load = after.load(d)
        if d in offered_to and load > p.capacity:
            raise InvariantViolation(
                f"doctor {d} was offered a patient and holds {load} > capacity {p.capacity}"
            )
        if load > p.capacity and load > before.load(d):
            raise InvariantViolation(f"doctor {d} above capacity {p.capacity} grew to {load}")


def check_offers(before: Snapshot, after: Snapshot, events: Sequence[Event], now: datetime) -> None:
    """Each offer went to an eligible doctor who serves the ticket, in queue order: no
    earlier-ranked waiting ticket that doctor serves was left behind; and never to a doctor
    who declined it (or let it lapse) while their exclusion lasts, however many declined it.

    Every transaction that makes offers matches last, after any presence change, so the state
    after the step is the state each offer was made in."""
    for doctor, cid in offers_made(events):
        row = after.rows[cid]
        p = after.presence.get(doctor)
        if row.status != "offered" or row.doctor_id != doctor:
            raise InvariantViolation(f"offer of {cid} to {doctor} is not what the row says")
        if p is None or not p.eligible or not p.serves(row, now):
            raise InvariantViolation(f"{cid} offered to doctor {doctor}, who may not take it: {p}")
        # Exclusions begun in this step are in ``after`` too, and none is deleted before its
        # end: the ticket must not exclude the doctor now.
        if row.excludes(doctor, now):
            raise InvariantViolation(
                f"{cid} offered again to doctor {doctor}, who declined it, before their "
                f"exclusion ended ({row.exclusions[doctor]}, now {now})"
            )
        for w in after.waiting():
            if w.key >= row.key:
                break
            if p.serves(w, now):
                raise OrderViolation(
                    f"doctor {doctor} was offered consultation {cid} (rank {row.rank_at}) while "
                    f"consultation {w.id} (rank {w.rank_at}), which they serve, was waiting"
                )


def check_liveness(after: Snapshot, now: datetime) -> None:
    """No eligible doctor with room sits beside a waiting ticket they serve (a doctor excluded
    from a ticket does not serve it until the exclusion ends)."""
    pairs = after.idle_pairs(now)
    if pairs:
        raise InvariantViolation(f"free doctors beside waiting tickets they serve: {sorted(pairs)}")


def check_event_log(before: Snapshot, after: Snapshot, events: Sequence[Event]) -> None:
    """Replaying the step's events on the state before it gives the state after it: every
    offer, withdrawal, match, end, interruption and drop was published once, in order, and an
    offer only ever follows a waiting state (so no ticket is offered twice per offering)."""
    state: dict[int, tuple[str, int | None]] = {
        cid: (r.status if r.status in OPEN else "closed", r.doctor_id)
        for cid, r in before.rows.items()
    }
    closed_offer: dict[int, int] = {}  # cancelled while offered: the withdrawal follows

    def get(cid: int) -> tuple[str, int | None]:
        return state.get(cid, ("waiting", None))  # a new ticket is born waiting, silently

    for e in events:
        match e:
            case OfferMade(doctor_id=d, consultation=c):
                if get(c["id"])[0] != "waiting":
                    raise InvariantViolation(f"offer of {c['id']} to {d} from {get(c['id'])}")
                state[c["id"]] = ("offered", d)
            case OfferWithdrawn(doctor_id=d, consultation_id=cid):
                if get(cid) == ("offered", d):
                    state[cid] = ("waiting", None)
                elif closed_offer.pop(cid, None) != d:
                    raise InvariantViolation(f"withdrawal of {cid} from {d} in {get(cid)}")
            case ConsultationMatched(consultation=c):
                if get(c["id"]) != ("offered", c["doctor"]["id"]):
                    raise InvariantViolation(f"match of {c['id']} from {get(c['id'])}")
                state[c["id"]] = ("active", c["doctor"]["id"])
            case ConsultationEnded(consultation=c):
                status, doctor = get(c["id"])
                if status not in OPEN:
                    raise InvariantViolation(f"end of {c['id']} from {status}")
                if status == "offered":
                    assert doctor is not None
                    closed_offer[c["id"]] = doctor
                state[c["id"]] = ("closed", doctor)
            case ConsultationInterrupted(consultation_id=cid):
                if get(cid)[0] != "active":
                    raise InvariantViolation(f"interruption of {cid} from {get(cid)}")
                state[cid] = ("waiting", None)
            case TicketDropped(consultation_id=cid):
                if get(cid)[0] != "waiting":
                    raise InvariantViolation(f"drop of {cid} from {get(cid)} (no withdrawal?)")
                state[cid] = ("closed", None)
    if closed_offer:
        raise InvariantViolation(f"offers cancelled without a withdrawal: {closed_offer}")
    for cid, r in after.rows.items():
        status = r.status if r.status in OPEN else "closed"
        expected = get(cid)
        doctor = r.doctor_id if status in ("offered", "active") else None
        got_doctor = expected[1] if expected[0] in ("offered", "active") else None
        if (expected[0], got_doctor) != (status, doctor):
            raise InvariantViolation(
                f"consultation {cid}: the events say {expected}, the database {(status, doctor)}"
            )
    for d, p in after.presence.items():
        was = before.presence.get(d)
        if was is not None and was.status == p.status:
            continue
        told = [e.status for e in events if isinstance(e, PresenceChanged) and e.doctor_id == d]
        if not told or told[-1] != p.status:
            raise InvariantViolation(f"doctor {d} became {p.status}; events said {told}")


def compare(expected: Snapshot, after: Snapshot, what: str) -> None:
    """The model's prediction against the database, field by field."""
    problems = []
    for cid in sorted(set(expected.rows) | set(after.rows)):
        e, a = expected.rows.get(cid), after.rows.get(cid)
        if e is None or a is None:
            problems.append(f"consultation {cid}: expected {e}, got {a}")
            continue
        ee, ae = e.essentials(), a.essentials()
        diff = {k: (ee[k], ae[k]) for k in ee if ee[k] != ae[k]}
        if diff:
            problems.append(f"consultation {cid}: (expected, got) {diff}")
    for d in sorted(set(expected.presence) | set(after.presence)):
        ep, ap = expected.presence.get(d), after.presence.get(d)
        if ep is None or ap is None:
            problems.append(f"doctor {d}: expected {ep}, got {ap}")
            continue
        ee, ae = ep.essentials(), ap.essentials()
        diff = {k: (ee[k], ae[k]) for k in ee if ee[k] != ae[k]}
        if diff:
            problems.append(f"doctor {d}: (expected, got) {diff}")
    if problems:
        raise ModelMismatch(f"after {what}:\n  " + "\n  ".join(problems))
