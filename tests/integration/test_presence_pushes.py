"""Every presence change of a doctor reaches the patients waiting in that doctor's queues: a
busy doctor going away, offline, online, or their console dropping pushes a fresh
``queue:ticket`` whose figures are those of ``GET /api/queue/ticket``. Real HTTP and Socket.IO,
both backends."""

from __future__ import annotations

from typing import Any

from tests.support import ApiClient, SocketClient, start_and_accept

ONE_AT_A_TIME = {"specialties": ["internal-medicine"], "forms": ["chat"], "capacity": 1}
FIGURES = ("place", "waiting", "eta", "doctors", "long_wait")


async def pushed(
    patient: ApiClient, patient_ws: SocketClient, doctors: dict[str, int]
) -> dict[str, Any]:
    """The first ``queue:ticket`` push with these doctor figures, checked against the ticket the
    patient reads."""
    update = await patient_ws.until("queue:ticket", lambda u: u["doctors"] == doctors, 10)
    ticket = await patient.call("GET", "/api/queue/ticket")
    assert {k: update[k] for k in FIGURES} == {k: ticket[k] for k in FIGURES}
    return update


async def test_a_busy_doctor_going_away_offline_online_or_dropping_updates_waiting_patients(
    api, sockets
) -> None:
    mind = await api("dr.house@demo.test")
    mind_ws = await sockets(mind.token)
    assert (await mind_ws.emit("presence:online", ONE_AT_A_TIME))["ok"]
    anna = await api("anna@demo.test")
    await start_and_accept(anna, mind_ws, "internal-medicine")
    piotr = await api("piotr@demo.test")
    piotr_ws = await sockets(piotr.token)
    await piotr.call(
        "POST", "/api/consultations", {"specialty": "internal-medicine", "form": "chat"}, expect=201
    )
    await pushed(piotr, piotr_ws, {"online": 1, "busy": 1, "away": 0})

    assert (await mind_ws.emit("presence:away", {}))["ok"]
    update = await pushed(piotr, piotr_ws, {"online": 0, "busy": 0, "away": 1})
    assert update["eta"]["high_minutes"] is None  # nobody to serve the ticket now

    assert (await mind_ws.emit("presence:online", ONE_AT_A_TIME))["ok"]
    await pushed(piotr, piotr_ws, {"online": 1, "busy": 1, "away": 0})

    assert (await mind_ws.emit("presence:offline", {}))["ok"]
    await pushed(piotr, piotr_ws, {"online": 0, "busy": 0, "away": 0})

    assert (await mind_ws.emit("presence:online", ONE_AT_A_TIME))["ok"]
    await pushed(piotr, piotr_ws, {"online": 1, "busy": 1, "away": 0})

    # The console drops (the grace starts: away meanwhile), then comes back.
    await mind_ws.close()
    await pushed(piotr, piotr_ws, {"online": 0, "busy": 0, "away": 1})
    await sockets(mind.token)
    await pushed(piotr, piotr_ws, {"online": 1, "busy": 1, "away": 0})
