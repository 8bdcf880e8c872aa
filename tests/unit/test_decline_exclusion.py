"""A decline excludes its doctor from the ticket for a while, not for ever; meanwhile the
ticket's estimate leaves that doctor out. Time is an injected manual clock."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from consult.clock import ManualClock
from consult.domain import ConsultationStatus
from consult.queue import eta
from consult.queue.doctors import DoctorLoad
from consult.queue.matching import DoctorSlot, Waiting, pick_doctor
from consult.queue.policy import QueueRules, excluded_doctor
from consult.queue.tickets import QueueView
from consult.schemas import DoctorsStateOut
from consult.services import queue_rules
from consult.settings import Settings

SPECIALTY, FORM = "cardiology", "chat"
THRESHOLD = timedelta(minutes=30)
NOBODY_ELSE = {"low_minutes": None, "high_minutes": None, "basis": "no other doctor online now"}


def test_the_decliner_is_excluded_until_the_exclusion_ends_and_not_after():
    clock = ManualClock()
    rules = QueueRules(decline_exclusion=timedelta(minutes=5))
    until = rules.exclusion_ends(clock.now())
    doctor = DoctorSlot(7, frozenset({SPECIALTY}), frozenset({FORM}), capacity=1, active=0)

    def offered_to() -> int | None:
        ticket = Waiting(1, SPECIALTY, FORM, excluded=excluded_doctor(7, until, clock.now()))
        picked = pick_doctor([doctor], ticket)
        return None if picked is None else picked.doctor_id

    assert offered_to() is None
    clock.advance(299)
    assert offered_to() is None
    clock.advance(1)
    assert offered_to() == 7


def test_a_decline_without_an_end_excludes_nobody():
    """Tickets declined before exclusions had an end (only ``declined_by``) are free again."""
    assert excluded_doctor(7, None, ManualClock().now()) is None
    assert excluded_doctor(None, None, ManualClock().now()) is None


def test_the_exclusion_is_a_setting_and_cannot_be_negative():
    assert Settings().decline_exclusion == 300
    settings = Settings.from_env({"CONSULT_DECLINE_EXCLUSION": "90"})
    assert queue_rules(settings).decline_exclusion == timedelta(seconds=90)
    with pytest.raises(ValueError, match="CONSULT_DECLINE_EXCLUSION must be 0 or more"):
        Settings.from_env({"CONSULT_DECLINE_EXCLUSION": "-1"})
    with pytest.raises(ValueError, match="must not be negative"):
        QueueRules(decline_exclusion=timedelta(seconds=-1))
    # 0: the decliner may be asked again at once.
    now = ManualClock().now()
    assert (
        excluded_doctor(7, QueueRules(decline_exclusion=timedelta(0)).exclusion_ends(now), now)
        is None
    )


def _load(doctor_id: int, elapsed: tuple[float, ...] = (), connected: bool = True) -> DoctorLoad:
    return DoctorLoad(
        doctor_id=doctor_id,
        name=f"Dr {doctor_id}",
        status="online",
        connected=connected,
        specialties=frozenset({SPECIALTY}),
        forms=frozenset({FORM}),
        capacity=1,
        elapsed=elapsed,
    )


def _view(loads: list[DoctorLoad], waiting: list[int | None]) -> QueueView:
    """A queue of waiting tickets; ``waiting[i]`` is the doctor ticket ``i`` is excluded from."""
    online = [d for d in loads if d.online]
    busy = [max(d.elapsed) for d in online if d.busy]
    rows = [
        SimpleNamespace(
            id=100 + i, patient_id=i, status=ConsultationStatus.WAITING, excluded=excluded
        )
        for i, excluded in enumerate(waiting)
    ]
    return QueueView(
        specialty=SPECIALTY,
        form=FORM,
        tickets=rows,  # type: ignore[arg-type]  # rows only need these attributes
        doctors=DoctorsStateOut(online=len(online), busy=len(busy), away=0),
        model=eta.DurationModel.fit([], FORM),
        busy_elapsed=busy,
        waiting=len(rows),
        loads=tuple(loads),
    )


def test_declined_by_the_only_doctor_online_the_ticket_says_nobody_else_can_take_it():
    view = _view([_load(7)], waiting=[7, None])
    payloads = [p for _, p in view.payloads(THRESHOLD)]
    # Without the exclusion, the doctor (free) would take the first at once: "0-1 min".
    assert payloads[0]["eta"] == NOBODY_ELSE and payloads[0]["long_wait"] is True
    assert payloads[1]["eta"]["high_minutes"] is not None
    for index, payload in enumerate(payloads):
        assert payload == view.update_for(index, THRESHOLD).model_dump(mode="json")


def test_the_estimate_leaves_out_only_the_doctor_who_declined():
    # Doctor 7 is free, doctor 8 busy for 2 minutes: excluded from 7, the patient waits for 8.
    loads = [_load(7), _load(8, elapsed=(120.0,))]
    view = _view(loads, waiting=[7])
    expected = eta.estimate_wait(0, 1, [120.0], view.model)
    assert view.eta_for(0, 7).high_minutes == expected.high_seconds // 60  # type: ignore[operator]
    assert view.eta_for(0, 7).low_minutes == expected.low_seconds // 60
    assert view.eta_for(0, None).high_minutes == 1  # doctor 7 counted: no wait
    # A decliner who is no longer online changes nothing: they were not counted anyway.
    gone = _view([_load(7, connected=False), _load(8, elapsed=(120.0,))], waiting=[7])
    assert gone.eta_for(0, 7) == gone.eta_for(0, None)
