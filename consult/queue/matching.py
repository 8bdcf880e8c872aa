"""Pure matching rules: which doctor may take which waiting consultation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DoctorSlot:
    doctor_id: int
    specialties: frozenset[str]
    forms: frozenset[str]
    capacity: int
    active: int

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.active)

    def takes(self, specialty: str, form: str) -> bool:
        return self.free > 0 and specialty in self.specialties and form in self.forms


@dataclass(frozen=True)
class Waiting:
    consultation_id: int
    specialty: str
    form: str


def pick_doctor(doctors: Sequence[DoctorSlot], specialty: str, form: str) -> DoctorSlot | None:
    """The free doctor with the most room left, then the lowest id (stable, testable)."""
    candidates = [d for d in doctors if d.takes(specialty, form)]
    if not candidates:
        return None
    return min(candidates, key=lambda d: (-d.free, d.doctor_id))


def pick_waiting(doctor: DoctorSlot, queue: Sequence[Waiting]) -> Waiting | None:
    """The longest-waiting consultation the doctor takes; ``queue`` is in arrival order."""
    for waiting in queue:
        if doctor.takes(waiting.specialty, waiting.form):
            return waiting
    return None
