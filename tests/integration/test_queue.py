"""The walk-in queue over real HTTP and Socket.IO: offers, timeouts, leases, live places,
alternatives, restarts. Time is the server's manual clock; sweeps are run by hand."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import create_async_engine

from consult.app import SIO, create_app
from consult.http.routing import SERVICES
from consult.settings import Settings
from consult.signaling.server import sent, user_room
from consult.storage import tables as t
from tests.support import ApiClient, SocketClient, start_and_accept

JOIN = "/api/consultations"
IM = {"specialties": ["internal-medicine"], "forms": ["chat"]}


async def dropped(client: SocketClient, database_url: str, table: sa.Table, column: str) -> None:
    """Close the socket and wait until the server has noted the drop (it does so on its own
    time, after the client is gone)."""
    await client.close()
    engine = create_async_engine(database_url)
    try:
        for _ in range(100):
            async with engine.connect() as conn:
                noted = (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(table)
                        .where(table.c[column].is_not(None))
                    )
                ).scalar()
            if noted:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the server never noticed the disconnection")
    finally:
        await engine.dispose()


async def sweep(server: TestServer) -> int:
    return await server.app[SERVICES].sweeper.sweep()


async def join(patient: ApiClient, specialty: str, form: str = "chat") -> dict:
    return await patient.call("POST", JOIN, {"specialty": specialty, "form": form}, expect=201)


async def test_an_unanswered_offer_goes_to_the_next_doctor(api, sockets, server, clock):
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    assert (await house_ws.emit("presence:online", IM))["ok"]
    anna = await api("anna@demo.test")
    ticket = await join(anna, "internal-medicine")
    cid = ticket["consultation"]["id"]
    assert (await house_ws.next("queue:offer"))["consultation"]["id"] == cid

    grey = await api("dr.grey@demo.test")
    grey_ws = await sockets(grey.token)
    await grey_ws.emit("presence:online", IM)
    clock.advance(19)
    assert await sweep(server) == 0  # not yet
    clock.advance(2)
    assert await sweep(server) == 1
    withdrawn = await house_ws.next("queue:offer-withdrawn")
    assert withdrawn == {"consultation_id": cid, "reason": "timeout"}
    await house_ws.until("presence:changed", lambda p: p["status"] == "away")
    assert (await grey_ws.next("queue:offer"))["consultation"]["id"] == cid
    # The lapsed offer cannot be accepted any more; the new one can.
    late = await house_ws.emit("queue:accept", {"consultation_id": cid})
    assert late["error"]["code"] == "no_such_offer"
    assert (await grey_ws.emit("queue:accept", {"consultation_id": cid}))["data"]["status"] == (
        "active"
    )


async def test_a_declined_offer_keeps_its_place_and_skips_that_doctor(api, sockets):
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    cid = (await join(anna, "internal-medicine"))["consultation"]["id"]
    await house_ws.next("queue:offer")
    declined = await house_ws.emit("queue:decline", {"consultation_id": cid})
    assert declined["ok"] and declined["data"]["status"] == "waiting"
    # The decline's end is kept in the row, but a waiting ticket shows no offer deadline.
    assert declined["data"]["offer_expires_at"] is None
    ticket = await anna.call("GET", "/api/queue/ticket")
    assert ticket["place"] == 1 and ticket["consultation"]["status"] == "waiting"
    assert ticket["consultation"]["offer_expires_at"] is None
    # Another doctor coming online gets it; house is not offered it again at once.
    grey = await api("dr.grey@demo.test")
    grey_ws = await sockets(grey.token)
    await grey_ws.emit("presence:online", IM)
    assert (await grey_ws.next("queue:offer"))["consultation"]["id"] == cid
    assert house_ws.pending("queue:offer") == 0


NOBODY_ELSE = {"low_minutes": None, "high_minutes": None, "basis": "no other doctor online now"}


async def test_a_patient_declined_by_the_only_doctor_is_told_so_and_offered_again_later(
    api, sockets, server, clock
):
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    cid = (await join(anna, "internal-medicine"))["consultation"]["id"]
    await house_ws.next("queue:offer")
    assert (await house_ws.emit("queue:decline", {"consultation_id": cid}))["ok"]
    # Meanwhile her page says that nobody else can take her, not "0-1 min", and offers slots.
    update = await anna_ws.until("queue:ticket", lambda u: u["status"] == "waiting")
    assert update["eta"] == NOBODY_ELSE and update["long_wait"] is True
    assert update["doctors"] == {"online": 1, "busy": 0, "away": 0}
    ticket = await anna.call("GET", "/api/queue/ticket")
    assert ticket["place"] == 1 and ticket["eta"] == NOBODY_ELSE and ticket["long_wait"]
    assert ticket["next"].startswith("The doctor online cannot take you just now.")
    assert ticket["alternatives"] and ticket["next"].endswith("slots below instead.")
    # CONSULT_DECLINE_EXCLUSION (300 s) later the same doctor is asked again, not before.
    clock.advance(299)
    await sweep(server)
    assert (await anna.call("GET", "/api/queue/ticket"))["consultation"]["status"] == "waiting"
    clock.advance(1)
    await sweep(server)
    assert (await house_ws.next("queue:offer"))["consultation"]["id"] == cid
    accepted = await house_ws.emit("queue:accept", {"consultation_id": cid})
    assert accepted["data"]["status"] == "active"


async def test_a_declined_patient_is_estimated_without_the_decliner_and_taken_by_the_next(
    api, sockets, clock
):
    grey = await api("dr.grey@demo.test")
    grey_ws = await sockets(grey.token)
    await grey_ws.emit("presence:online", IM)
    piotr = await api("piotr@demo.test")
    piotr_cid = await start_and_accept(piotr, grey_ws, "internal-medicine")
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    cid = (await join(anna, "internal-medicine"))["consultation"]["id"]
    await house_ws.next("queue:offer")
    await house_ws.emit("queue:decline", {"consultation_id": cid})
    # House is free but will not take her: she waits for grey, whose consultation has run a
    # minute (past the estimate tables' reuse, so the figure is computed afresh).
    clock.advance(60)
    ticket = await anna.call("GET", "/api/queue/ticket")
    assert ticket["doctors"] == {"online": 2, "busy": 1, "away": 0}
    assert ticket["eta"]["low_minutes"] >= 1 and ticket["eta"]["high_minutes"] > 1
    assert ticket["next"].startswith("You will be connected when a doctor is free")
    # Grey frees up: offered at once, although the exclusion still runs.
    await grey.call("POST", f"/api/consultations/{piotr_cid}/end", {})
    assert (await grey_ws.next("queue:offer"))["consultation"]["id"] == cid


async def test_when_an_exclusion_ends_the_patients_estimate_counts_that_doctor_again(
    api, sockets, server, clock
):
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    cid = (await join(anna, "internal-medicine"))["consultation"]["id"]
    await house_ws.next("queue:offer")
    await house_ws.emit("queue:decline", {"consultation_id": cid})
    await anna_ws.until("queue:ticket", lambda u: u["eta"] == NOBODY_ELSE)
    # House takes the next patient, and is busy when anna's exclusion ends.
    piotr = await api("piotr@demo.test")
    await start_and_accept(piotr, house_ws, "internal-medicine")
    clock.advance(300)
    await sweep(server)
    update = await anna_ws.until("queue:ticket", lambda u: u["eta"] != NOBODY_ELSE)
    assert update["place"] == 1 and update["eta"]["high_minutes"] is not None
    assert update["doctors"] == {"online": 1, "busy": 1, "away": 0}
    assert (await anna.call("GET", "/api/queue/ticket"))["eta"]["high_minutes"] is not None


@pytest.mark.parametrize("status", ["away", "offline"])
async def test_a_doctor_who_goes_away_with_an_offer_pending_may_be_offered_it_again_at_once(
    api, sockets, status
):
    """Going away or offline withdraws the offer but says nothing about the patient: the
    doctor back online is offered the ticket at once, not after CONSULT_DECLINE_EXCLUSION."""
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    cid = (await join(anna, "internal-medicine"))["consultation"]["id"]
    await house_ws.next("queue:offer")
    assert (await house_ws.emit(f"presence:{status}", {}))["data"]["status"] == status
    withdrawn = await house_ws.next("queue:offer-withdrawn")
    assert withdrawn == {"consultation_id": cid, "reason": f"doctor {status}"}
    ticket = await anna.call("GET", "/api/queue/ticket")
    assert ticket["consultation"]["status"] == "waiting" and ticket["place"] == 1
    # Her page says nobody is online, not that the doctor online cannot take her.
    assert ticket["eta"]["basis"] == "no doctor online now"
    # Back online, no time having passed: she is offered to him again.
    assert (await house_ws.emit("presence:online", IM))["ok"]
    assert (await house_ws.next("queue:offer"))["consultation"]["id"] == cid
    assert (await house_ws.emit("queue:accept", {"consultation_id": cid}))["ok"]


async def test_an_offer_that_lapses_while_the_console_is_gone_excludes_nobody(
    api, sockets, server, clock, database_url
):
    """A doctor whose console dropped (in its grace period) may never have seen the offer:
    its lapse sends them away, but back online they may be offered the ticket at once."""
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    cid = (await join(anna, "internal-medicine"))["consultation"]["id"]
    await house_ws.next("queue:offer")
    await dropped(house_ws, database_url, t.doctor_presence, "disconnected_at")
    clock.advance(21)
    assert await sweep(server) == 1  # the offer lapsed; the console's grace still runs
    house_ws = await sockets(house.token)
    assert (await house_ws.emit("presence:online", IM))["ok"]
    assert (await house_ws.next("queue:offer"))["consultation"]["id"] == cid


async def test_a_doctor_online_who_lets_an_offer_lapse_is_excluded_like_a_decliner(
    api, sockets, server, clock
):
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    cid = (await join(anna, "internal-medicine"))["consultation"]["id"]
    await house_ws.next("queue:offer")
    clock.advance(21)
    assert await sweep(server) == 1
    assert (await house_ws.next("queue:offer-withdrawn"))["reason"] == "timeout"
    await house_ws.until("presence:changed", lambda p: p["status"] == "away")
    # Back online at once: not offered her again until the exclusion ends (from the lapse).
    assert (await house_ws.emit("presence:online", IM))["ok"]
    ticket = await anna.call("GET", "/api/queue/ticket")
    assert ticket["consultation"]["status"] == "waiting" and ticket["eta"] == NOBODY_ELSE
    await anna_ws.until("queue:ticket", lambda u: u["eta"] == NOBODY_ELSE)
    clock.advance(299)
    await sweep(server)
    assert (await anna.call("GET", "/api/queue/ticket"))["consultation"]["status"] == "waiting"
    clock.advance(1)
    await sweep(server)
    assert (await house_ws.next("queue:offer"))["consultation"]["id"] == cid


async def test_every_doctor_who_declined_stays_excluded_until_their_own_exclusion_ends(
    api, sockets, server, clock
):
    """Two doctors decline the same patient, 100 s apart: the first is not offered her again
    when the second declines, and each is offered her again when their own exclusion ends."""
    house = await api("dr.house@demo.test")
    grey = await api("dr.grey@demo.test")
    ws = {
        house.user["id"]: await sockets(house.token),
        grey.user["id"]: await sockets(grey.token),
    }
    for doctor_ws in ws.values():
        await doctor_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    ticket = await join(anna, "internal-medicine")
    cid = ticket["consultation"]["id"]
    first_ws = ws[ticket["consultation"]["doctor"]["id"]]
    (second_ws,) = [w for w in ws.values() if w is not first_ws]
    await first_ws.next("queue:offer")

    assert (await first_ws.emit("queue:decline", {"consultation_id": cid}))["ok"]
    assert (await second_ws.next("queue:offer"))["consultation"]["id"] == cid
    clock.advance(100)
    assert (await second_ws.emit("queue:decline", {"consultation_id": cid}))["ok"]
    # Neither of the two doctors online will take her now: she is told so, with slots.
    ticket = await anna.call("GET", "/api/queue/ticket")
    assert ticket["consultation"]["status"] == "waiting" and ticket["place"] == 1
    assert ticket["eta"] == NOBODY_ELSE and ticket["long_wait"] and ticket["alternatives"]
    assert ticket["doctors"] == {"online": 2, "busy": 0, "away": 0}
    assert ticket["next"].startswith("The doctors online cannot take you just now.")
    update = await anna_ws.until("queue:ticket", lambda u: u["eta"] == NOBODY_ELSE)
    assert update["long_wait"] is True

    clock.advance(199)  # 299 s after the first decline
    await sweep(server)
    assert (await anna.call("GET", "/api/queue/ticket"))["consultation"]["status"] == "waiting"
    assert first_ws.pending("queue:offer") == 0
    clock.advance(1)  # the first doctor's exclusion is over; the second's runs 100 s more
    await sweep(server)
    assert (await first_ws.next("queue:offer"))["consultation"]["id"] == cid
    # The first doctor declines again: a new exclusion of theirs, and the second's still runs.
    assert (await first_ws.emit("queue:decline", {"consultation_id": cid}))["ok"]
    clock.advance(99)
    await sweep(server)
    assert (await anna.call("GET", "/api/queue/ticket"))["consultation"]["status"] == "waiting"
    assert second_ws.pending("queue:offer") == 0
    clock.advance(1)
    await sweep(server)
    assert (await second_ws.next("queue:offer"))["consultation"]["id"] == cid
    accepted = await second_ws.emit("queue:accept", {"consultation_id": cid})
    assert accepted["data"]["status"] == "active"


async def test_a_dropped_console_goes_away_after_the_grace_and_its_patient_returns_first(
    api, sockets, server, clock, database_url
):
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    cid = await start_and_accept(anna, house_ws, "internal-medicine")
    piotr = await api("piotr@demo.test")
    await join(piotr, "internal-medicine")

    await dropped(house_ws, database_url, t.doctor_presence, "disconnected_at")
    clock.advance(29)
    assert await sweep(server) == 0
    # Meanwhile the dropped console gets no new patients (piotr still waits).
    assert (await piotr.call("GET", "/api/queue/ticket"))["consultation"]["status"] == "waiting"
    clock.advance(2)
    assert await sweep(server) == 1
    interrupted = await anna_ws.next("consultation:interrupted")
    assert interrupted == {"consultation_id": cid, "reason": "doctor disconnected"}
    # Anna is back at the front, ahead of piotr who joined before her consultation was cut.
    assert (await anna.call("GET", "/api/queue/ticket"))["place"] == 1
    assert (await piotr.call("GET", "/api/queue/ticket"))["place"] == 2
    grey = await api("dr.grey@demo.test")
    grey_ws = await sockets(grey.token)
    await grey_ws.emit("presence:online", IM)
    assert (await grey_ws.next("queue:offer"))["consultation"]["id"] == cid


async def test_a_console_that_reconnects_within_the_grace_keeps_its_patients(
    api, sockets, server, clock, database_url
):
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    cid = await start_and_accept(anna, house_ws, "internal-medicine")
    await dropped(house_ws, database_url, t.doctor_presence, "disconnected_at")
    clock.advance(20)
    await sockets(house.token)
    clock.advance(20)
    assert await sweep(server) == 0
    assert (await anna.call("GET", f"/api/consultations/{cid}"))["status"] == "active"


async def test_a_patients_ticket_outlives_a_short_drop_but_not_a_long_one(
    api, sockets, server, clock, database_url
):
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    cid = (await join(anna, "dermatology"))["consultation"]["id"]
    await dropped(anna_ws, database_url, t.consultations, "patient_disconnected_at")
    clock.advance(50)
    anna_ws = await sockets(anna.token)  # back within 60 s: the ticket is hers again
    clock.advance(50)
    assert await sweep(server) == 0
    assert (await anna.call("GET", "/api/queue/ticket"))["consultation"]["id"] == cid
    await dropped(anna_ws, database_url, t.consultations, "patient_disconnected_at")
    clock.advance(61)
    assert await sweep(server) == 1
    assert (await anna.call("GET", f"/api/consultations/{cid}"))["status"] == "cancelled"
    assert (await anna.call("GET", "/api/queue/ticket", expect=404))["error"]["code"] == (
        "no_ticket"
    )


async def test_places_move_live_when_someone_ahead_leaves(api, sockets):
    anna = await api("anna@demo.test")
    first = (await join(anna, "dermatology"))["consultation"]["id"]
    piotr = await api("piotr@demo.test")
    piotr_ws = await sockets(piotr.token)
    ticket = await join(piotr, "dermatology")
    assert ticket["place"] == 2 and ticket["waiting"] == 2
    await anna.call("POST", f"/api/consultations/{first}/end", {})
    update = await piotr_ws.until("queue:ticket", lambda t: t["place"] == 1)
    assert update["waiting"] == 1 and update["doctors"]["online"] == 0
    assert update["long_wait"] is True  # nobody online: the page offers slots


async def test_one_ticket_at_a_time(api):
    anna = await api("anna@demo.test")
    await join(anna, "dermatology")
    body = await anna.call("POST", JOIN, {"specialty": "cardiology", "form": "chat"}, expect=409)
    assert body["error"]["code"] == "already_in_consultation"


async def test_alternative_slots_are_offered_when_no_doctor_is_online(api):
    piotr = await api("piotr@demo.test")
    ticket = await join(piotr, "dermatology")
    assert ticket["doctors"]["online"] == 0 and ticket["eta"]["high_minutes"] is None
    assert ticket["long_wait"] is True and "No doctor" in ticket["next"]
    slots = ticket["alternatives"]
    assert len(slots) == 5
    assert all(s["specialty"]["code"] == "dermatology" and s["covered"] for s in slots)
    assert [s["starts_at"] for s in slots] == sorted(s["starts_at"] for s in slots)
    # One click: book the first alternative; the ticket stays until the patient leaves it.
    booking = await piotr.call("POST", "/api/bookings", {"slot_id": slots[0]["id"]}, expect=201)
    assert booking["slot"]["id"] == slots[0]["id"]


async def test_no_alternatives_when_a_doctor_is_free_soon(api, sockets):
    grey = await api("dr.grey@demo.test")
    grey_ws = await sockets(grey.token)
    await grey_ws.emit("presence:online", {"specialties": ["paediatrics"], "forms": ["chat"]})
    anna = await api("anna@demo.test")
    await start_and_accept(anna, grey_ws, "paediatrics")
    piotr = await api("piotr@demo.test")
    ticket = await join(piotr, "paediatrics")
    assert ticket["place"] == 1 and ticket["alternatives"] == []
    assert ticket["long_wait"] is False
    assert ticket["eta"]["low_minutes"] <= ticket["eta"]["high_minutes"]


async def test_the_queue_survives_a_restart(api, sockets, database_url, clock, aiohttp_server):
    anna = await api("anna@demo.test")
    piotr = await api("piotr@demo.test")
    first = (await join(anna, "dermatology"))["consultation"]["id"]
    second = (await join(piotr, "dermatology"))["consultation"]["id"]

    settings = Settings(database_url=database_url, migrate_on_start=False, sweep_interval=0)
    restarted = await aiohttp_server(create_app(settings, clock=clock))
    url = str(restarted.make_url("/")).rstrip("/")
    for client in (anna, piotr):
        client.base_url = url
    assert (await anna.call("GET", "/api/queue/ticket"))["place"] == 1
    assert (await piotr.call("GET", "/api/queue/ticket"))["place"] == 2
    skin = ApiClient(url)
    await skin.login("dr.skin@demo.test")
    skin_ws = await SocketClient().connect(url, skin.token)
    try:
        await skin_ws.emit("presence:online", {"specialties": ["dermatology"], "forms": ["chat"]})
        assert (await skin_ws.next("queue:offer"))["consultation"]["id"] == first
        assert (await piotr.call("GET", f"/api/consultations/{second}"))["status"] == "waiting"
    finally:
        await skin_ws.close()
        await skin.close()


async def test_going_away_hands_a_pending_offer_to_another_doctor(api, sockets):
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    cid = (await join(anna, "internal-medicine"))["consultation"]["id"]
    await house_ws.next("queue:offer")
    grey = await api("dr.grey@demo.test")
    grey_ws = await sockets(grey.token)
    await grey_ws.emit("presence:online", IM)
    away = await house_ws.emit("presence:away", {})
    assert away["ok"] and away["data"]["status"] == "away"
    withdrawn = await house_ws.next("queue:offer-withdrawn")
    assert withdrawn == {"consultation_id": cid, "reason": "doctor away"}
    offer = await grey_ws.next("queue:offer")
    assert offer["consultation"]["id"] == cid
    # The offer's deadline is written like every other timestamp.
    assert offer["expires_at"].endswith("Z")
    assert offer["expires_at"] == offer["consultation"]["offer_expires_at"]


async def test_an_away_doctor_whose_console_drops_still_hands_back_their_patient(
    api, sockets, server, clock, database_url
):
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    cid = await start_and_accept(anna, house_ws, "internal-medicine")
    # Away means "no new patients"; the consultation in progress goes on...
    await house_ws.emit("presence:away", {})
    assert (await anna.call("GET", f"/api/consultations/{cid}"))["status"] == "active"
    # ...until the console is gone for the grace period.
    await dropped(house_ws, database_url, t.doctor_presence, "disconnected_at")
    clock.advance(31)
    await sweep(server)
    assert (await anna_ws.next("consultation:interrupted"))["consultation_id"] == cid
    assert (await anna.call("GET", "/api/queue/ticket"))["place"] == 1
    # The interrupted consultation stays in the record, and an offered (not yet accepted)
    # doctor may not read the patient's record.
    grey = await api("dr.grey@demo.test")
    grey_ws = await sockets(grey.token)
    await grey_ws.emit("presence:online", IM)
    await grey_ws.next("queue:offer")
    body = await grey.call("GET", f"/api/patients/{anna.user['id']}/record", expect=404)
    assert body["error"]["code"] == "patient_not_found"


async def test_a_join_answered_after_the_doctor_accepted_says_so(api, sockets, server):
    """The join's answer is built after its transaction; a doctor fast enough to accept in
    between must not turn the patient's successful join into an error."""
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    cid = await start_and_accept(anna, house_ws, "internal-medicine")
    services = server.app[SERVICES]
    actor = await services.accounts.authenticate(anna.token)
    ticket = await services.tickets.ticket(actor, cid)
    assert ticket is not None and ticket.place == 0
    assert ticket.consultation.status == "active" and "accepted" in ticket.next
    # Without the id (the patient's "current ticket"), an active consultation is no ticket.
    assert await services.tickets.ticket(actor) is None


async def test_a_push_counts_as_sent_once_written_out_to_the_sockets(api, sockets, server):
    """The fan-out paces itself on engine.io's per-socket send queue (signaling/server.py
    ``sent``); this fails if a python-socketio upgrade changes that queue."""
    sio = server.app[SIO]
    piotr = await api("piotr@demo.test")
    piotr_ws = await sockets(piotr.token)
    me = (await piotr.call("GET", "/api/me"))["id"]
    room = user_room(me)
    ((_, eio_sid),) = list(sio.manager.get_participants("/", room))
    for n in range(200):
        await sio.emit("bench:ping", {"n": n, "pad": "x" * 2000}, to=room)
    await sent(sio, [room], limit=10)
    assert sio.eio.sockets[eio_sid].queue.qsize() == 0
    assert (await piotr_ws.until("bench:ping", lambda m: m["n"] == 199))["n"] == 199
