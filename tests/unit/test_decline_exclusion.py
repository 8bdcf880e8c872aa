"""A decline excludes its doctor from the ticket for a while, not for ever, and every doctor
who declined it stays excluded until their own exclusion ends; meanwhile the ticket's estimate
leaves those doctors out. Time is an injected manual clock. (That going away or offline with an
offer pending excludes nobody is a service rule: tests/integration/test_queue.py and the state
machine's model, tests/queue_model.py.)"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from consult.bundle import queue_rules
from consult.clock import ManualClock
from consult.domain import ConsultationStatus
from consult.estimates import wait_model
from consult.queue.doctors import DoctorLoad
from consult.queue.policy import DoctorSlot, QueueRules, Waiting, excluded_doctors, pick_doctor
from consult.queue.queue_view import QueueView
from consult.queue.tickets import _next_step
from consult.schemas import DoctorsStateOut
from consult.settings import Settings

SPECIALTY, FORM = "cardiology", "chat"
THRESHOLD = timedelta(minutes=30)
NOBODY_ELSE = {"low_minutes": None, "high_minutes": None, "basis": "no other doctor online now"}


def _slot(doctor_id: int) -> DoctorSlot:
    return DoctorSlot(doctor_id, frozenset({SPECIALTY}), frozenset({FORM}), capacity=1, active=0)


def _offered_to(
    doctors: list[DoctorSlot], exclusions: list[tuple[int, datetime]], now: datetime
) -> int | None:
    ticket = Waiting(1, SPECIALTY, FORM, excluded=excluded_doctors(exclusions, now))
    picked = pick_doctor(doctors, ticket)
    return None if picked is None else picked.doctor_id


def test_the_decliner_is_excluded_until_the_exclusion_ends_and_not_after():
    clock = ManualClock()
    rules = QueueRules(decline_exclusion=timedelta(minutes=5))
    exclusions = [(7, rules.exclusion_ends(clock.now()))]

    assert _offered_to([_slot(7)], exclusions, clock.now()) is None
    clock.advance(299)
    assert _offered_to([_slot(7)], exclusions, clock.now()) is None
    clock.advance(1)
    assert _offered_to([_slot(7)], exclusions, clock.now()) == 7


def test_every_decliner_stays_excluded_until_their_own_exclusion_ends():
    """Doctor 7 declines, then doctor 8 declines 100 s later: 7 is not asked again when 8
    declines (only the last decliner used to be remembered), but each once their own five
    minutes are over."""
    clock = ManualClock()
    rules = QueueRules(decline_exclusion=timedelta(minutes=5))
    doctors = [_slot(7), _slot(8)]
    exclusions = [(7, rules.exclusion_ends(clock.now()))]
    assert _offered_to(doctors, exclusions, clock.now()) == 8
    clock.advance(100)
    exclusions.append((8, rules.exclusion_ends(clock.now())))
    assert excluded_doctors(exclusions, clock.now()) == {7, 8}
    assert _offered_to(doctors, exclusions, clock.now()) is None
    clock.advance(199)  # 299 s after 7 declined
    assert _offered_to(doctors, exclusions, clock.now()) is None
    clock.advance(1)  # 7's exclusion is over, 8's runs 100 s more
    assert excluded_doctors(exclusions, clock.now()) == {8}
    assert _offered_to(doctors, exclusions, clock.now()) == 7
    assert _offered_to([_slot(8)], exclusions, clock.now()) is None
    clock.advance(100)
    assert excluded_doctors(exclusions, clock.now()) == frozenset()
    assert _offered_to([_slot(8)], exclusions, clock.now()) == 8


def test_a_ticket_nobody_declined_excludes_nobody():
    assert excluded_doctors([], ManualClock().now()) == frozenset()
    assert _offered_to([_slot(7)], [], ManualClock().now()) == 7


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
    ends = QueueRules(decline_exclusion=timedelta(0)).exclusion_ends(now)
    assert excluded_doctors([(7, ends)], now) == frozenset()


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


def _view(loads: list[DoctorLoad], waiting: list[frozenset[int]]) -> QueueView:
    """A queue of waiting tickets; ``waiting[i]`` holds the doctors ticket ``i`` excludes."""
    online = [d for d in loads if d.online]
    busy = [max(d.elapsed) for d in online if d.busy]
    rows = [
        SimpleNamespace(id=100 + i, patient_id=i, status=ConsultationStatus.WAITING)
        for i in range(len(waiting))
    ]
    return QueueView(
        specialty=SPECIALTY,
        form=FORM,
        tickets=rows,  # type: ignore[arg-type]  # rows only need these attributes
        doctors=DoctorsStateOut(online=len(online), busy=len(busy), away=0),
        model=wait_model.DurationModel.fit([], FORM),
        busy_elapsed=busy,
        waiting=len(rows),
        loads=tuple(loads),
        excluded={row.id: doctors for row, doctors in zip(rows, waiting, strict=True) if doctors},
    )


def _payloads_match_the_models(view: QueueView) -> list[dict]:
    payloads = [p for _, p in view.payloads(THRESHOLD)]
    for index, payload in enumerate(payloads):
        assert payload == view.update_for(index, THRESHOLD).model_dump(mode="json")
    return payloads


def test_declined_by_the_only_doctor_online_the_ticket_says_nobody_else_can_take_it():
    view = _view([_load(7)], waiting=[frozenset({7}), frozenset()])
    payloads = _payloads_match_the_models(view)
    # Without the exclusion, the doctor (free) would take the first at once: "0-1 min".
    assert payloads[0]["eta"] == NOBODY_ELSE and payloads[0]["long_wait"] is True
    assert payloads[1]["eta"]["high_minutes"] is not None


def test_declined_by_every_doctor_online_the_ticket_says_nobody_else_can_take_it():
    """Two doctors online, both of whom declined the first ticket: no estimate, alternatives;
    a ticket only one of them declined is estimated with the other."""
    view = _view([_load(7), _load(8)], waiting=[frozenset({7, 8}), frozenset({8})])
    payloads = _payloads_match_the_models(view)
    assert payloads[0]["eta"] == NOBODY_ELSE and payloads[0]["long_wait"] is True
    # Doctor 7 is free and takes the first ticket it may: one ahead, then this one.
    assert payloads[1]["eta"]["high_minutes"] is not None and payloads[1]["long_wait"] is False
    assert _next_step(1, 2, nobody_else=True).startswith("The doctors online cannot take you")
    assert _next_step(1, 1, nobody_else=True).startswith("The doctor online cannot take you")


def test_the_estimate_leaves_out_only_the_doctors_who_declined():
    # Doctors 7 and 8 are free, doctor 9 busy for 2 minutes: excluded from 7 and 8, the patient
    # waits for 9; excluded from 7 only, 8 takes them at once.
    loads = [_load(7), _load(8), _load(9, elapsed=(120.0,))]
    view = _view(loads, waiting=[frozenset({7, 8})])
    expected = wait_model.estimate_wait(0, 1, [120.0], view.model)
    both = view.eta_for(0, frozenset({7, 8}))
    assert both.high_minutes == expected.high_seconds // 60  # type: ignore[operator]
    assert both.low_minutes == expected.low_seconds // 60
    assert view.eta_for(0, frozenset({7})).high_minutes == 1  # doctor 8 counted: no wait
    assert view.eta_for(0).high_minutes == 1
    # A decliner who is no longer online changes nothing: they were not counted anyway.
    gone = _view(
        [_load(7, connected=False), _load(8, connected=False), _load(9, elapsed=(120.0,))],
        waiting=[frozenset({7, 8})],
    )
    assert gone.counted(frozenset({7, 8})) == frozenset()
    assert gone.eta_for(0, frozenset({7, 8})) == gone.eta_for(0)
