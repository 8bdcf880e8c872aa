"""The pure matching rules."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consult.queue.matching import DoctorSlot, Waiting, pick_doctor, pick_waiting


def doctor(did: int, specialties=("cardiology",), forms=("chat",), capacity=1, active=0):
    return DoctorSlot(did, frozenset(specialties), frozenset(forms), capacity, active)


def test_a_full_doctor_takes_nobody():
    assert pick_doctor([doctor(1, active=1)], "cardiology", "chat") is None


def test_the_doctor_must_take_the_specialty_and_the_form():
    doctors = [doctor(1, specialties=("dermatology",)), doctor(2, forms=("video",)), doctor(3)]
    assert pick_doctor(doctors, "cardiology", "chat") == doctors[2]


def test_the_doctor_with_most_room_is_picked_first():
    doctors = [doctor(1, capacity=3, active=2), doctor(2, capacity=3, active=0)]
    picked = pick_doctor(doctors, "cardiology", "chat")
    assert picked is not None and picked.doctor_id == 2


def test_the_longest_waiting_suitable_patient_is_picked():
    queue = [
        Waiting(1, "dermatology", "chat"),
        Waiting(2, "cardiology", "chat"),
        Waiting(3, "cardiology", "chat"),
    ]
    chosen = pick_waiting(doctor(9), queue)
    assert chosen is not None and chosen.consultation_id == 2


slots = st.builds(
    DoctorSlot,
    doctor_id=st.integers(1, 50),
    specialties=st.frozensets(st.sampled_from(["a", "b", "c"])),
    forms=st.frozensets(st.sampled_from(["chat", "voice", "video"])),
    capacity=st.integers(0, 3),
    active=st.integers(0, 3),
)


@given(st.lists(slots), st.sampled_from(["a", "b", "c"]), st.sampled_from(["chat", "video"]))
def test_a_picked_doctor_always_has_room_and_takes_the_request(doctors, specialty, form):
    picked = pick_doctor(doctors, specialty, form)
    if picked is None:
        assert not any(d.takes(specialty, form) for d in doctors)
    else:
        assert picked.active < picked.capacity
        assert specialty in picked.specialties and form in picked.forms
