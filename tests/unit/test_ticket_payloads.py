"""The fan-out's plain-dict tickets are exactly what the documented model gives."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from consult.domain import ConsultationStatus
from consult.estimates import wait_model
from consult.queue.queue_view import EXACT_PLACES, QueueView
from consult.schemas import DoctorsStateOut

THRESHOLD = timedelta(minutes=30)


def _view(offered: int, waiting: int, online: int, busy: list[float]) -> QueueView:
    rows = [
        SimpleNamespace(id=1000 + i, patient_id=i, status=ConsultationStatus.OFFERED, excluded=None)
        for i in range(offered)
    ] + [
        SimpleNamespace(
            id=2000 + i, patient_id=100 + i, status=ConsultationStatus.WAITING, excluded=None
        )
        for i in range(waiting)
    ]
    return QueueView(
        specialty="cardiology",
        form="chat",
        tickets=rows,  # type: ignore[arg-type]  # rows only need these attributes
        doctors=DoctorsStateOut(online=online, busy=len(busy), away=1),
        model=wait_model.DurationModel.fit([600.0, 900.0, 1200.0], "chat"),
        busy_elapsed=busy,
        waiting=waiting,
    )


@pytest.mark.parametrize(
    ("offered", "waiting", "online", "busy"),
    [(0, 0, 1, []), (2, 5, 3, [60.0, 400.0]), (1, EXACT_PLACES + 15, 4, [10.0] * 4), (0, 3, 0, [])],
)
def test_payloads_match_the_model_for_every_place(offered, waiting, online, busy):
    view = _view(offered, waiting, online, busy)
    payloads = view.payloads(THRESHOLD)
    assert [patient for patient, _ in payloads] == [r.patient_id for r in view.tickets]
    for index, (_, payload) in enumerate(payloads):
        assert payload == view.update_for(index, THRESHOLD).model_dump(mode="json")
    places = [p["place"] for _, p in payloads]
    assert places == [0] * offered + list(range(1, waiting + 1))
    # Alternatives are suggested exactly where the wait is unknown or past the threshold.
    for _, p in payloads:
        high = p["eta"]["high_minutes"]
        assert p["long_wait"] == (p["place"] > 0 and (high is None or high > 30))
