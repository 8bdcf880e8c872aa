"""The pure matching rules and queue policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from consult.queue.policy import (
    FRONT_PRIORITY,
    DoctorSlot,
    QueueRules,
    Waiting,
    expired,
    pick_doctor,
    pick_waiting,
    rank_at,
)


def doctor(
    did: int, specialties=("cardiology",), forms=("chat",), capacity=1, active=0, languages=()
):
    return DoctorSlot(
        did, frozenset(specialties), frozenset(forms), capacity, active, frozenset(languages)
    )


def ticket(cid=1, specialty="cardiology", form="chat", **kw):
    return Waiting(cid, specialty, form, **kw)


def test_a_full_doctor_takes_nobody():
    assert pick_doctor([doctor(1, active=1)], ticket()) is None


def test_the_doctor_must_take_the_specialty_and_the_form():
    doctors = [doctor(1, specialties=("dermatology",)), doctor(2, forms=("video",)), doctor(3)]
    assert pick_doctor(doctors, ticket()) == doctors[2]


def test_the_doctor_with_most_room_is_picked_first():
    doctors = [doctor(1, capacity=3, active=2), doctor(2, capacity=3, active=0)]
    picked = pick_doctor(doctors, ticket())
    assert picked is not None and picked.doctor_id == 2


def test_preferred_doctor_language_and_a_recent_decline_are_honoured():
    doctors = [doctor(1, languages=("pl",)), doctor(2, languages=("en",)), doctor(3)]
    assert pick_doctor(doctors, ticket(preferred_doctor_id=2)).doctor_id == 2
    assert pick_doctor(doctors, ticket(language="en")).doctor_id == 2
    # A doctor with no languages listed takes any language.
    assert pick_doctor(doctors[2:], ticket(language="de")).doctor_id == 3
    assert pick_doctor([doctors[0]], ticket(excluded=frozenset({1}))) is None
    # Every doctor who declined it recently is left out, not only the last one.
    assert pick_doctor(doctors, ticket(excluded=frozenset({1, 3}))).doctor_id == 2


def test_the_first_suitable_ticket_in_queue_order_is_picked():
    queue = [ticket(1, "dermatology"), ticket(2), ticket(3)]
    chosen = pick_waiting(doctor(9), queue)
    assert chosen is not None and chosen.consultation_id == 2


def test_priority_is_a_head_start_so_waiting_time_still_counts():
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    early = rank_at(t0, 0)
    # Priority 10 arriving 5 minutes later goes ahead; arriving 15 minutes later does not.
    assert rank_at(t0 + timedelta(minutes=5), 10) < early
    assert rank_at(t0 + timedelta(minutes=15), 10) > early
    # A returning patient goes ahead of anyone who has waited less than a day.
    assert rank_at(t0 + timedelta(hours=3), FRONT_PRIORITY) < early


def test_capacity_voice_and_video_are_one_at_a_time_chats_are_capped():
    rules = QueueRules(max_parallel_chats=3)
    assert rules.capacity(["chat"], 5) == 3
    assert rules.capacity(["chat"], None) == 1
    assert rules.capacity(["chat", "video"], 3) == 1


def test_grace_periods():
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    grace = timedelta(seconds=30)
    assert not expired(None, grace, now)
    assert not expired(now - timedelta(seconds=29), grace, now)
    assert expired(now - timedelta(seconds=30), grace, now)


slots = st.builds(
    DoctorSlot,
    doctor_id=st.integers(1, 50),
    specialties=st.frozensets(st.sampled_from(["a", "b", "c"])),
    forms=st.frozensets(st.sampled_from(["chat", "voice", "video"])),
    capacity=st.integers(0, 3),
    active=st.integers(0, 3),
    languages=st.frozensets(st.sampled_from(["pl", "en"])),
)
tickets = st.builds(
    Waiting,
    consultation_id=st.integers(1, 100),
    specialty=st.sampled_from(["a", "b", "c"]),
    form=st.sampled_from(["chat", "video"]),
    preferred_doctor_id=st.none() | st.integers(1, 50),
    language=st.none() | st.sampled_from(["pl", "en"]),
    excluded=st.frozensets(st.integers(1, 50), max_size=3),
)


@given(st.lists(slots), tickets)
def test_a_picked_doctor_always_has_room_and_serves_the_ticket(doctors, waiting):
    picked = pick_doctor(doctors, waiting)
    if picked is None:
        assert not any(d.serves(waiting) for d in doctors)
    else:
        assert picked.active < picked.capacity
        assert waiting.specialty in picked.specialties and waiting.form in picked.forms
        assert waiting.preferred_doctor_id in (None, picked.doctor_id)
        assert picked.doctor_id not in waiting.excluded
