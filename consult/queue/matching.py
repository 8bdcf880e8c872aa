"""Pure matching rules: which doctor may take which waiting ticket."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace


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
