"""The queue's rules, pure and clock-free: who goes first, which doctor may take which waiting
ticket, and when leases and offers run out.

Order. Each ticket has a priority in minutes and an arrival time; it ranks as if it had
arrived that many minutes earlier (``rank_at = queued_at - priority``). The queue is served by
ascending ``rank_at``. Because everyone's effective priority grows by one point per minute of
waiting, a ticket with priority p overtakes only tickets that have waited less than p minutes:
nobody starves. Ordinary tickets have priority 0 (first come, first served). A patient whose
consultation was cut off by the doctor's side returns with ``FRONT_PRIORITY``, ahead of
everyone who is waiting.

Declines. A doctor who declines a ticket, or lets its offer lapse while online with a connected
console, is not offered that ticket again for ``decline_exclusion``; the ticket keeps its place.
Each such doctor stays excluded until their own exclusion ends, whoever declines after them.
The exclusion ends on its own: were it to last until another doctor declined, a ticket whose
only suitable doctor declined it would wait forever. Meanwhile the ticket's estimate leaves
those doctors out. An offer withdrawn because its doctor went away or offline (or their console
dropped) excludes nobody: that says nothing about the patient, and the doctor back online may be
offered the ticket at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from consult.domain import Form

FRONT_PRIORITY = 24 * 60  # minutes: a day, i.e. ahead of any realistic wait


@dataclass(frozen=True)
class QueueRules:
    offer_timeout: timedelta = timedelta(seconds=20)
    doctor_grace: timedelta = timedelta(seconds=30)
    patient_grace: timedelta = timedelta(seconds=60)
    max_parallel_chats: int = 3
    alternatives_threshold: timedelta = timedelta(minutes=30)
    alternatives_count: int = 5
    # How long a doctor who declined a ticket (or let its offer lapse) is not offered it again.
    decline_exclusion: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if self.decline_exclusion < timedelta(0):
            raise ValueError(f"decline_exclusion must not be negative: {self.decline_exclusion}")

    def exclusion_ends(self, now: datetime) -> datetime:
        return now + self.decline_exclusion

    def capacity(self, forms: list[str], requested: int | None) -> int:
        """Voice and video take the doctor whole; chats may run in parallel up to the limit."""
        if any(f != Form.CHAT for f in forms):
            return 1
        return max(1, min(requested or 1, self.max_parallel_chats))


def rank_at(queued_at: datetime, priority_minutes: int) -> datetime:
    return queued_at - timedelta(minutes=priority_minutes)


def expired(since: datetime | None, grace: timedelta, now: datetime) -> bool:
    return since is not None and now - since >= grace


def excluded_doctors(exclusions: Iterable[tuple[int, datetime]], now: datetime) -> frozenset[int]:
    """The doctors a ticket must not be offered to at ``now``: of its exclusions, (doctor, end)
    pairs, those that have not ended yet."""
    return frozenset(doctor for doctor, ends_at in exclusions if now < ends_at)


# --- matching: which doctor may take which waiting ticket ------------------------------------


@dataclass(frozen=True)
class DoctorSlot:
    doctor_id: int
    specialties: frozenset[str]
    forms: frozenset[str]
    capacity: int
    # Active consultations plus offers not yet answered.
    active: int
    languages: frozenset[str] = frozenset()

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.active)

    def takes(self, specialty: str, form: str) -> bool:
        return self.free > 0 and specialty in self.specialties and form in self.forms

    def serves(self, ticket: Waiting) -> bool:
        return (
            self.takes(ticket.specialty, ticket.form)
            and ticket.preferred_doctor_id in (None, self.doctor_id)
            and (ticket.language is None or not self.languages or ticket.language in self.languages)
            and self.doctor_id not in ticket.excluded
        )

    def with_one_more(self) -> DoctorSlot:
        return replace(self, active=self.active + 1)


@dataclass(frozen=True)
class Waiting:
    consultation_id: int
    specialty: str
    form: str
    preferred_doctor_id: int | None = None
    language: str | None = None
    # The doctors who declined it (or let its offer lapse) less than ``decline_exclusion`` ago,
    # each not offered it again until their own exclusion ends (``policy.excluded_doctors``).
    excluded: frozenset[int] = frozenset()


def pick_doctor(doctors: Iterable[DoctorSlot], ticket: Waiting) -> DoctorSlot | None:
    """The free doctor with the most room left, then the lowest id (stable, testable)."""
    candidates = [d for d in doctors if d.serves(ticket)]
    if not candidates:
        return None
    return min(candidates, key=lambda d: (-d.free, d.doctor_id))


def pick_waiting(doctor: DoctorSlot, queue: Sequence[Waiting]) -> Waiting | None:
    """The first ticket in queue order (``queue`` is sorted by rank) that the doctor serves."""
    for ticket in queue:
        if doctor.serves(ticket):
            return ticket
    return None
