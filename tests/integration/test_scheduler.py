"""The schedulers' dashboard over real HTTP and Socket.IO: the figures, the breach flag, the
last hour's history, the actions (move, doctor away, drop) with their audit entries and live
pushes, refusals that change nothing, and /metrics. Time is the server's manual clock."""

from __future__ import annotations

from typing import Any

from consult.storage import tables as t
from tests.metrics_reader import parse_metrics, sample
from tests.support import ApiClient, SocketClient, rows

JOIN = "/api/consultations"
QUEUES = "/api/scheduler/queues"
IM = {"specialties": ["internal-medicine"], "forms": ["chat"]}
DERM = {"specialties": ["dermatology"], "forms": ["chat"]}


async def join(patient: ApiClient, specialty: str, form: str = "chat") -> int:
    body = await patient.call("POST", JOIN, {"specialty": specialty, "form": form}, expect=201)
    return int(body["consultation"]["id"])


def specialty(overview: dict[str, Any], code: str) -> dict[str, Any]:
    return next(s for s in overview["specialties"] if s["specialty"]["code"] == code)


def form(figures: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in figures["forms"] if f["form"] == name)


async def audit_rows(database_url: str, action: str) -> list[Any]:
    return await rows(database_url, t.audit_log, t.audit_log.c.action == action)


async def scheduler_with_socket(api: Any, sockets: Any) -> tuple[ApiClient, SocketClient]:
    scheduler = await api("scheduler@demo.test")
    return scheduler, await sockets(scheduler.token)


async def test_the_figures_count_patients_waits_doctors_and_consultations(api, sockets, clock):
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    assert (await house_ws.emit("presence:online", IM))["ok"]
    grey = await api("dr.grey@demo.test")
    grey_ws = await sockets(grey.token)
    assert (await grey_ws.emit("presence:online", IM))["ok"]
    skin = await api("dr.skin@demo.test")
    skin_ws = await sockets(skin.token)
    assert (await skin_ws.emit("presence:online", DERM))["ok"]
    assert (await skin_ws.emit("presence:away"))["ok"]

    anna = await api("anna@demo.test")
    cid = await join(anna, "internal-medicine")
    assert (await house_ws.next("queue:offer"))["consultation"]["id"] == cid
    assert (await house_ws.emit("queue:accept", {"consultation_id": cid}))["ok"]
    clock.advance(30)
    piotr = await api("piotr@demo.test")
    waiting_id = await join(piotr, "dermatology")
    clock.advance(90)

    scheduler = await api("scheduler@demo.test")
    overview = await scheduler.call("GET", QUEUES)
    assert overview["wait_breach_seconds"] == 900 and overview["history_bucket_seconds"] == 300
    assert overview["breaches"] == 0
    assert len(overview["specialties"]) == 7  # every specialty, even with nobody queued

    im = specialty(overview, "internal-medicine")
    assert (im["waiting"], im["in_progress"], im["longest_wait_seconds"]) == (0, 1, None)
    assert im["doctors"] == {"online": 2, "busy": 1, "away": 0}
    assert form(im, "chat")["in_progress"] == 1 and form(im, "chat")["doctors"]["busy"] == 1
    assert form(im, "video")["doctors"] == {"online": 0, "busy": 0, "away": 0}
    assert {(d["name"], d["state"], d["consultations"]) for d in im["doctor_list"]} == {
        ("Dr Gregory House", "busy", 1),
        ("Dr Meredith Grey", "free", 0),
    }

    derm = specialty(overview, "dermatology")
    assert derm["waiting"] == 1 and derm["offered"] == 0 and derm["in_progress"] == 0
    assert derm["longest_wait_seconds"] == 90 and derm["median_wait_seconds"] == 90
    assert derm["doctors"] == {"online": 0, "busy": 0, "away": 1}
    assert derm["breach"] is False
    assert derm["tickets"] == [
        {
            "consultation_id": waiting_id,
            "patient": {"id": piotr.user["id"], "name": "Piotr Nowak"},
            "form": "chat",
            "status": "waiting",
            "place": 1,
            "waited_seconds": 90,
            "doctor": None,
            "returned": False,
        }
    ]
    assert [(d["name"], d["state"]) for d in derm["doctor_list"]] == [("Dr Iwona Skóra", "away")]
    assert form(derm, "chat")["waiting"] == 1 and form(derm, "voice")["waiting"] == 0
    # House went online for internal medicine only: cardiology does not count him.
    assert specialty(overview, "cardiology")["doctor_list"] == []


async def test_a_wait_longer_than_the_threshold_is_a_breach(api, clock):
    anna = await api("anna@demo.test")
    await join(anna, "dermatology")
    clock.advance(100)
    piotr = await api("piotr@demo.test")
    await join(piotr, "dermatology")
    clock.advance(800)
    scheduler = await api("scheduler@demo.test")
    derm = specialty(await scheduler.call("GET", QUEUES), "dermatology")
    assert derm["longest_wait_seconds"] == 900 and derm["breach"] is False  # not above it yet
    clock.advance(1)
    overview = await scheduler.call("GET", QUEUES)
    derm = specialty(overview, "dermatology")
    assert derm["longest_wait_seconds"] == 901 and derm["median_wait_seconds"] == 851
    assert derm["breach"] is True and form(derm, "chat")["breach"] is True
    assert form(derm, "voice")["breach"] is False
    assert overview["breaches"] == 1
    assert [tk["waited_seconds"] for tk in derm["tickets"]] == [901, 801]  # longest first


async def test_the_last_hour_in_five_minute_buckets(api, sockets, clock):
    anna = await api("anna@demo.test")
    first = await join(anna, "dermatology")  # t0
    clock.advance(7 * 60)
    piotr = await api("piotr@demo.test")
    second = await join(piotr, "dermatology")  # t0 + 7 min
    clock.advance(6 * 60)
    await anna.call("POST", f"/api/consultations/{first}/end", {})  # leaves at t0 + 13 min
    clock.advance(60)
    skin = await api("dr.skin@demo.test")
    skin_ws = await sockets(skin.token)
    await skin_ws.emit("presence:online", DERM)
    assert (await skin_ws.next("queue:offer"))["consultation"]["id"] == second
    assert (await skin_ws.emit("queue:accept", {"consultation_id": second}))["ok"]  # t0 + 14
    clock.advance(90)  # now = t0 + 15.5 min

    scheduler = await api("scheduler@demo.test")
    overview = await scheduler.call("GET", QUEUES)
    derm = specialty(overview, "dermatology")
    history = derm["history"]
    assert len(history) == 12
    assert history[-1]["end"] == overview["at"]
    assert [(p["waiting"], p["peak"]) for p in history] == [(0, 0)] * 8 + [
        (1, 1),  # ends 30 s after anna joined
        (1, 1),
        (2, 2),  # piotr joined
        (0, 2),  # anna left, piotr started
    ]
    assert form(derm, "chat")["history"] == history
    assert all(p["peak"] == 0 for p in form(derm, "video")["history"])
    assert derm["in_progress"] == 1 and derm["waiting"] == 0


async def test_moving_a_ticket_keeps_its_place_by_time_and_withdraws_the_offer(
    api, sockets, clock, database_url
):
    scheduler, scheduler_ws = await scheduler_with_socket(api, sockets)
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    moved = await join(anna, "internal-medicine")
    assert (await house_ws.next("queue:offer"))["consultation"]["id"] == moved
    clock.advance(60)
    piotr = await api("piotr@demo.test")
    piotr_ws = await sockets(piotr.token)
    stays = await join(piotr, "dermatology")

    out = await scheduler.call(
        "POST", f"/api/scheduler/tickets/{moved}/move", {"specialty": "dermatology"}
    )
    assert out["specialty"]["code"] == "dermatology" and out["status"] == "waiting"
    assert out["doctor"] is None
    withdrawn = await house_ws.next("queue:offer-withdrawn")
    assert withdrawn == {"consultation_id": moved, "reason": "moved"}
    told = await anna_ws.next("queue:moved")
    assert told["consultation"]["specialty"]["code"] == "dermatology"
    # Anna joined before piotr: she goes ahead of him in her new queue.
    await anna_ws.until("queue:ticket", lambda u: u["place"] == 1 and u["waiting"] == 2)
    await piotr_ws.until("queue:ticket", lambda u: u["place"] == 2 and u["waiting"] == 2)
    pushed = await scheduler_ws.until(
        "scheduler:overview",
        lambda o: (
            specialty(o, "dermatology")["waiting"] == 2
            and specialty(o, "internal-medicine")["waiting"] == 0
        ),
    )
    assert [tk["consultation_id"] for tk in specialty(pushed, "dermatology")["tickets"]] == [
        moved,
        stays,
    ]
    assert (await anna.call("GET", "/api/queue/ticket"))["place"] == 1

    (entry,) = await audit_rows(database_url, "scheduler.move")
    assert entry.actor_id == scheduler.user["id"] and entry.actor_role == "scheduler"
    assert entry.consultation_id == moved and entry.patient_id == anna.user["id"]
    assert entry.allowed and entry.detail == "internal-medicine/chat -> dermatology/chat"


async def test_refused_moves_change_nothing(api, sockets, database_url):
    scheduler = await api("scheduler@demo.test")
    piotr = await api("piotr@demo.test")
    cid = await join(piotr, "dermatology")
    url = f"/api/scheduler/tickets/{cid}/move"

    async def refused(path: str, body: Any, status: int, code: str) -> None:
        answer = await scheduler.call("POST", path, body, expect=status)
        assert answer["error"]["code"] == code, answer

    await refused(url, {"specialty": "cardiology"}, 409, "not_covered")  # piotr's basic plan
    await refused(url, {"specialty": "dermatology"}, 409, "same_queue")
    await refused(url, {"specialty": "astrology"}, 400, "unknown_specialty")
    await refused(url, {"specialty": ""}, 400, "invalid_payload")
    await refused(url, {"specialty": "paediatrics", "place": 1}, 400, "invalid_payload")
    await refused(url, {}, 400, "invalid_payload")
    await refused(
        "/api/scheduler/tickets/99999/move",
        {"specialty": "paediatrics"},
        404,
        ("consultation_not_found"),
    )
    await refused(
        "/api/scheduler/tickets/abc/move", {"specialty": "paediatrics"}, 400, ("invalid_id")
    )
    async with scheduler.session.post(
        scheduler.base_url + url,
        data=b"{not json",
        headers={"Authorization": f"Bearer {scheduler.token}"},
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "malformed_json"

    ticket = await piotr.call("GET", "/api/queue/ticket")
    assert ticket["consultation"]["specialty"]["code"] == "dermatology" and ticket["place"] == 1
    assert await audit_rows(database_url, "scheduler.move") == []

    # An active consultation is not in a queue any more.
    skin = await api("dr.skin@demo.test")
    skin_ws = await sockets(skin.token)
    await skin_ws.emit("presence:online", DERM)
    await skin_ws.next("queue:offer")
    await skin_ws.emit("queue:accept", {"consultation_id": cid})
    await refused(url, {"specialty": "paediatrics"}, 409, "not_queued")
    await refused(f"/api/scheduler/tickets/{cid}/drop", {}, 409, "not_queued")
    assert (await piotr.call("GET", f"/api/consultations/{cid}"))["status"] == "active"


async def test_dropping_a_ticket_cancels_it_and_tells_the_patient(api, sockets, database_url):
    scheduler, scheduler_ws = await scheduler_with_socket(api, sockets)
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    stale = await join(anna, "dermatology")
    await scheduler_ws.until(
        "scheduler:overview", lambda o: specialty(o, "dermatology")["waiting"] == 1
    )

    out = await scheduler.call("POST", f"/api/scheduler/tickets/{stale}/drop", {})
    assert out["status"] == "cancelled" and out["ended_at"] is not None
    assert await anna_ws.next("queue:dropped") == {
        "consultation_id": stale,
        "reason": "dropped by a scheduler",
    }
    await scheduler_ws.until(
        "scheduler:overview", lambda o: specialty(o, "dermatology")["waiting"] == 0
    )
    assert (await anna.call("GET", "/api/queue/ticket", expect=404))["error"]["code"] == (
        "no_ticket"
    )
    (entry,) = await audit_rows(database_url, "scheduler.drop")
    assert (entry.consultation_id, entry.patient_id) == (stale, anna.user["id"])
    assert entry.actor_id == scheduler.user["id"]
    again = await scheduler.call("POST", f"/api/scheduler/tickets/{stale}/drop", {}, expect=409)
    assert again["error"]["code"] == "not_queued"
    missing = await scheduler.call("POST", "/api/scheduler/tickets/99999/drop", {}, expect=404)
    assert missing["error"]["code"] == "consultation_not_found"
    assert len(await audit_rows(database_url, "scheduler.drop")) == 1

    # A ticket being offered: the doctor's offer is withdrawn and they are free again.
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    offered = await join(anna, "internal-medicine")
    await house_ws.next("queue:offer")
    await scheduler.call("POST", f"/api/scheduler/tickets/{offered}/drop", {})
    assert await house_ws.next("queue:offer-withdrawn") == {
        "consultation_id": offered,
        "reason": "ticket dropped",
    }
    overview = await scheduler.call("GET", QUEUES)
    im = specialty(overview, "internal-medicine")
    assert im["waiting"] == 0 and im["doctors"] == {"online": 1, "busy": 0, "away": 0}


async def test_marking_a_doctor_away_hands_their_offer_to_another(api, sockets, database_url):
    scheduler, scheduler_ws = await scheduler_with_socket(api, sockets)
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    cid = await join(anna, "internal-medicine")
    await house_ws.next("queue:offer")
    grey = await api("dr.grey@demo.test")
    grey_ws = await sockets(grey.token)
    await grey_ws.emit("presence:online", IM)
    house_id = house.user["id"]

    out = await scheduler.call("POST", f"/api/scheduler/doctors/{house_id}/away", {})
    assert out == {
        "doctor": {"id": house_id, "name": "Dr Gregory House"},
        "status": "away",
        "withdrawn": [cid],
    }
    assert await house_ws.next("queue:offer-withdrawn") == {
        "consultation_id": cid,
        "reason": "doctor away",
    }
    assert await house_ws.until("presence:changed", lambda p: p["status"] == "away") == {
        "status": "away",
        "reason": "marked away by a scheduler",
    }
    assert (await grey_ws.next("queue:offer"))["consultation"]["id"] == cid
    pushed = await scheduler_ws.until(
        "scheduler:overview",
        lambda o: (
            {d["name"]: d["state"] for d in specialty(o, "internal-medicine")["doctor_list"]}
            == {"Dr Gregory House": "away", "Dr Meredith Grey": "busy"}
        ),
    )
    assert specialty(pushed, "internal-medicine")["doctors"] == {"online": 1, "busy": 1, "away": 1}
    (entry,) = await audit_rows(database_url, "scheduler.doctor_away")
    assert entry.actor_id == scheduler.user["id"] and entry.detail == (
        f"doctor {house_id}; offers withdrawn: [{cid}]"
    )

    # Refusals: already away, not a doctor, no such user, a bad id.
    again = await scheduler.call("POST", f"/api/scheduler/doctors/{house_id}/away", {}, expect=409)
    assert again["error"]["code"] == "doctor_not_online"
    assert again["error"]["details"] == {"status": "away"}
    for path, status, code in [
        (f"/api/scheduler/doctors/{anna.user['id']}/away", 404, "doctor_not_found"),
        ("/api/scheduler/doctors/99999/away", 404, "doctor_not_found"),
        ("/api/scheduler/doctors/x/away", 400, "invalid_id"),
    ]:
        answer = await scheduler.call("POST", path, {}, expect=status)
        assert answer["error"]["code"] == code
    heart = await api("dr.heart@demo.test")  # never went online
    offline = await scheduler.call(
        "POST", f"/api/scheduler/doctors/{heart.user['id']}/away", {}, expect=409
    )
    assert offline["error"]["details"] == {"status": "offline"}
    assert len(await audit_rows(database_url, "scheduler.doctor_away")) == 1


async def test_only_schedulers_see_the_queues_and_act(api, sockets):
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    cid = await join(anna, "dermatology")
    house = await api("dr.house@demo.test")
    for who in (anna, house):
        for method, path, body in [
            ("GET", QUEUES, None),
            ("POST", f"/api/scheduler/tickets/{cid}/move", {"specialty": "paediatrics"}),
            ("POST", f"/api/scheduler/tickets/{cid}/drop", {}),
            ("POST", f"/api/scheduler/doctors/{house.user['id']}/away", {}),
        ]:
            answer = await who.call(method, path, body, expect=403)
            assert answer["error"]["code"] == "not_a_scheduler"
    anonymous = await api()
    assert (await anonymous.call("GET", QUEUES, expect=401))["error"]["code"] == (
        "not_authenticated"
    )
    ticket = await anna.call("GET", "/api/queue/ticket")
    assert ticket["consultation"]["specialty"]["code"] == "dermatology"
    # Patients' sockets are not in the schedulers' room.
    await anna.call("POST", f"/api/consultations/{cid}/end", {})
    await anna_ws.next("consultation:ended")
    assert anna_ws.pending("scheduler:overview") == 0


async def test_metrics_in_the_prometheus_text_format(api, sockets, clock):
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    cid = await join(anna, "internal-medicine")
    await house_ws.next("queue:offer")
    await house_ws.emit("queue:accept", {"consultation_id": cid})
    piotr = await api("piotr@demo.test")
    await join(piotr, "dermatology")
    clock.advance(42)

    client = await api()
    # The test client is on loopback, without a forwarding header: no session needed.
    async with client.session.get(client.base_url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    samples = parse_metrics(text)
    assert samples[sample("consult_queue_waiting", specialty="dermatology", form="chat")] == 1
    assert samples[sample("consult_queue_waiting", specialty="dermatology", form="video")] == 0
    assert (
        samples[sample("consult_queue_longest_wait_seconds", specialty="dermatology", form="chat")]
        == 42
    )
    assert samples[sample("consult_doctors", specialty="internal-medicine", state="busy")] == 1
    assert samples[sample("consult_doctors", specialty="internal-medicine", state="free")] == 0
    assert samples[sample("consult_doctors", specialty="dermatology", state="away")] == 0
    assert samples[sample("consult_consultations_in_progress", specialty="internal-medicine")] == 1
    assert samples[sample("consult_queue_wait_breach_threshold_seconds")] == 900
    specialties = {
        dict(labels)["specialty"]
        for name, labels in samples
        if labels and name.startswith(("consult_queue", "consult_doctors", "consult_consult"))
    }
    assert len(specialties) == 7
    # The standard process metrics too: this process's memory, CPU time and start time.
    assert samples[sample("process_resident_memory_bytes")] > 0
    assert samples[sample("process_cpu_seconds_total")] > 0
    assert samples[sample("process_start_time_seconds")] > 0
    assert any(name == "python_info" for name, _ in samples)

    # Forwarded (through a proxy): a scheduler's session is needed.
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    async with client.session.get(client.base_url + "/metrics", headers=forwarded) as response:
        assert response.status == 401
    for email, status in [("anna@demo.test", 403), ("scheduler@demo.test", 200)]:
        user = await api(email)
        headers = {**forwarded, "Authorization": f"Bearer {user.token}"}
        async with user.session.get(user.base_url + "/metrics", headers=headers) as response:
            assert response.status == status
            if status == 200:
                assert consult_figures(parse_metrics(await response.text())) == (
                    consult_figures(samples)
                )


def consult_figures(samples: dict[Any, float]) -> dict[Any, float]:
    """The samples of consult's own figures (the process's CPU time and memory move between
    two scrapes, and so do the loop's lag and the statements' durations)."""
    moving = ("consult_loop_lag_seconds", "consult_db_statement_seconds")
    return {
        key: value
        for key, value in samples.items()
        if key[0].startswith("consult_") and not key[0].startswith(moving)
    }
