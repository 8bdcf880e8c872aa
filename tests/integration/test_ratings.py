"""Ratings over real HTTP and Socket.IO, on each backend: the patient rates a finished
consultation, a past booked visit and the service; a rating changes within 7 days and is final
after; bad scores, someone else's visit and visits not over are refused with clear errors and
change nothing; the schedulers' figures (also pushed live) and a doctor's own, and /metrics."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from consult.clock import ManualClock
from consult.storage import tables as t
from tests.integration.test_booking import add_slot
from tests.integration.test_queue import IM
from tests.metrics_reader import parse_metrics, sample
from tests.support import ApiClient, count, rows, start_and_accept

DAY = 24 * 3600
_A = t.audit_log.c


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def consulted(api: Any, sockets: Any, *patients: str) -> tuple[ApiClient, dict[str, int]]:
    """Dr House consults each patient in turn and ends each consultation: their ids."""
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    assert (await house_ws.emit("presence:online", IM))["ok"]
    ended: dict[str, int] = {}
    for email in patients:
        patient = await api(email)
        cid = await start_and_accept(patient, house_ws, "internal-medicine")
        await house.call("POST", f"/api/consultations/{cid}/end", {})
        ended[email] = cid
    return house, ended


def rate(
    client: ApiClient, path: str, score: Any, comment: str | None = None, expect: int = 201
) -> Any:
    body: dict[str, Any] = {"score": score}
    if comment is not None:
        body["comment"] = comment
    return client.call("PUT", path, body, expect=expect)


async def audited(database_url: str, user_id: int, action: str, allowed: bool = True) -> list[Any]:
    return await rows(
        database_url,
        t.audit_log,
        _A.actor_id == user_id,
        _A.action == action,
        _A.allowed == allowed,
    )


async def test_a_rating_is_given_changed_within_7_days_then_final(
    api, sockets, clock: ManualClock, database_url
):
    _, ended = await consulted(api, sockets, "anna@demo.test")
    cid = ended["anna@demo.test"]
    anna = await api("anna@demo.test")
    path = f"/api/consultations/{cid}/rating"
    given = await rate(anna, path, 4, "  Clear advice, thank you.  ")
    assert given["kind"] == "consultation" and given["consultation_id"] == cid
    assert given["booking_id"] is None and given["doctor"]["name"] == "Dr Gregory House"
    assert given["specialty"] == {"code": "internal-medicine", "name": "Internal medicine"}
    assert (given["score"], given["comment"]) == (4, "Clear advice, thank you.")
    assert given["changed_at"] is None
    assert given["changeable_until"] == iso(clock.now() + timedelta(days=7))
    service = await rate(anna, f"/api/consultations/{cid}/service-rating", 5)
    assert (service["kind"], service["comment"]) == ("service", "")

    # A second rating is a change (200), the comment replaced too (here: none). (Sessions last
    # hours: a new login after each jump of the clock.)
    clock.advance(3 * DAY)
    anna = await api("anna@demo.test")
    changed = await rate(anna, path, 2, expect=200)
    assert changed["id"] == given["id"] and (changed["score"], changed["comment"]) == (2, "")
    assert changed["changed_at"] == iso(clock.now())
    assert changed["changeable_until"] == given["changeable_until"]
    # The same again changes nothing and is not audited again.
    assert await rate(anna, path, 2, expect=200) == changed
    assert await count(database_url, t.ratings) == 2

    # Seven days after the first rating it is final.
    clock.advance(4 * DAY + 1)
    anna = await api("anna@demo.test")
    refused = await rate(anna, path, 5, expect=409)
    assert refused["error"]["code"] == "rating_locked"
    assert refused["error"]["details"] == {"changeable_until": given["changeable_until"]}
    assert await rate(anna, path, 2, expect=200) == changed  # what it says already: fine
    mine = (await anna.call("GET", "/api/patients/me/ratings"))["ratings"]
    assert [(r["kind"], r["score"]) for r in mine] == [("service", 5), ("consultation", 2)]

    aid = anna.user["id"]
    assert [r.detail for r in await audited(database_url, aid, "rating.rate")] == [
        "consultation rating",
        "service rating",
    ]
    assert len(await audited(database_url, aid, "rating.change")) == 1
    assert [r.patient_id for r in await audited(database_url, aid, "rating.read")] == [aid]


BAD = [
    ({"score": 0}, "score"),
    ({"score": 6}, "score"),
    ({"score": -1}, "score"),
    ({"score": 4.5}, "score"),
    ({"score": "5"}, "score"),
    ({"score": True}, "score"),
    ({"score": None}, "score"),
    ({}, "score"),
    ({"score": 3, "comment": "x" * 1001}, "comment"),
    ({"score": 3, "comment": "nul \x00"}, "comment"),
    ({"score": 3, "stars": 3}, "stars"),
]


async def test_bad_scores_and_comments_are_refused_and_store_nothing(api, sockets, database_url):
    _, ended = await consulted(api, sockets, "anna@demo.test")
    anna = await api("anna@demo.test")
    path = f"/api/consultations/{ended['anna@demo.test']}/rating"
    for body, field in BAD:
        refused = await anna.call("PUT", path, body, expect=400)
        assert refused["error"]["code"] == "invalid_payload", body
        assert [p["field"] for p in refused["error"]["details"]["problems"]] == [field], body
    assert await count(database_url, t.ratings) == 0


async def test_the_longest_comment_and_a_whole_float_score_are_taken(api, sockets):
    _, ended = await consulted(api, sockets, "anna@demo.test")
    anna = await api("anna@demo.test")
    path = f"/api/consultations/{ended['anna@demo.test']}/rating"
    given = await rate(anna, path, 5.0, "x" * 1000)
    assert given["score"] == 5 and len(given["comment"]) == 1000


async def test_someone_elses_or_an_unfinished_consultation_is_refused(api, sockets, database_url):
    house, ended = await consulted(api, sockets, "anna@demo.test")
    cid = ended["anna@demo.test"]
    piotr = await api("piotr@demo.test")
    refused = await rate(piotr, f"/api/consultations/{cid}/rating", 5, expect=403)
    assert refused["error"]["code"] == "not_participant"
    denied = await audited(database_url, piotr.user["id"], "rating.rate", allowed=False)
    assert [(r.consultation_id, r.patient_id) for r in denied] == [
        (cid, (await api("anna@demo.test")).user["id"])
    ]
    missing = await rate(piotr, "/api/consultations/999999/service-rating", 5, expect=404)
    assert missing["error"]["code"] == "consultation_not_found"
    for other in (house, await api("scheduler@demo.test")):
        answer = await rate(other, f"/api/consultations/{cid}/rating", 5, expect=403)
        assert answer["error"]["code"] == "not_a_patient"
    # An active consultation is not rated yet.
    house_ws = await sockets(house.token)
    assert (await house_ws.emit("presence:online", IM))["ok"]
    active = await start_and_accept(piotr, house_ws, "internal-medicine")
    early = await rate(piotr, f"/api/consultations/{active}/rating", 5, expect=409)
    assert early["error"]["code"] == "consultation_not_finished"
    assert await count(database_url, t.ratings) == 0


async def test_a_booked_visit_is_rated_once_its_slot_is_over(api, clock: ManualClock, database_url):
    anna = await api("anna@demo.test")
    start = clock.now() + timedelta(hours=2)
    slot = await add_slot(database_url, "dr.grey@demo.test", "internal-medicine", start)
    booking = (await anna.call("POST", "/api/bookings", {"slot_id": slot}, expect=201))["id"]
    other = await add_slot(
        database_url, "dr.grey@demo.test", "internal-medicine", start + timedelta(hours=1)
    )
    cancelled = (await anna.call("POST", "/api/bookings", {"slot_id": other}, expect=201))["id"]
    await anna.call("POST", f"/api/bookings/{cancelled}/cancel", {})

    early = await rate(anna, f"/api/bookings/{booking}/rating", 5, expect=409)
    assert early["error"]["code"] == "visit_not_over"
    clock.advance(2 * 3600 + 10 * 60)  # in the middle of the visit: not over yet
    await rate(anna, f"/api/bookings/{booking}/service-rating", 5, expect=409)
    clock.advance(10 * 60)  # its 20 minutes are over
    given = await rate(anna, f"/api/bookings/{booking}/rating", 3, "Easy to book.")
    assert (given["kind"], given["booking_id"], given["consultation_id"]) == (
        "booking",
        booking,
        None,
    )
    assert given["doctor"]["name"] == "Dr Meredith Grey"
    service = await rate(anna, f"/api/bookings/{booking}/service-rating", 4)
    assert service["kind"] == "service" and service["booking_id"] == booking

    clock.advance(2 * 3600)
    anna = await api("anna@demo.test")
    gone = await rate(anna, f"/api/bookings/{cancelled}/rating", 1, expect=409)
    assert gone["error"]["code"] == "booking_cancelled"
    piotr = await api("piotr@demo.test")
    refused = await rate(piotr, f"/api/bookings/{booking}/rating", 1, expect=403)
    assert refused["error"]["code"] == "not_your_booking"
    denied = await audited(database_url, piotr.user["id"], "rating.rate", allowed=False)
    assert [r.patient_id for r in denied] == [anna.user["id"]]
    missing = await rate(piotr, "/api/bookings/999999/rating", 1, expect=404)
    assert missing["error"]["code"] == "booking_not_found"
    stored = await rows(database_url, t.ratings)
    assert [(r.kind, r.score) for r in stored] == [("booking", 3), ("service", 4)]
    details = [r.detail for r in await audited(database_url, anna.user["id"], "rating.rate")]
    assert details == [
        f"booking rating of booking {booking}",
        f"service rating of booking {booking}",
    ]


def im(summary: dict[str, Any]) -> dict[str, Any]:
    (found,) = [s for s in summary["specialties"] if s["specialty"]["code"] == "internal-medicine"]
    return found["figures"]


async def test_the_figures_move_live_for_schedulers(api, sockets, clock: ManualClock):
    house, ended = await consulted(api, sockets, "anna@demo.test", "piotr@demo.test")
    scheduler = await api("scheduler@demo.test")
    empty = await scheduler.call("GET", "/api/scheduler/ratings")
    assert empty["days"] == 30 and empty["specialties"] == [] and empty["doctors"] == []
    assert empty["overall"]["consultation"] == {
        "count": 0,
        "average": None,
        "distribution": [0, 0, 0, 0, 0],
    }
    live = await sockets(scheduler.token)
    anna, piotr = await api("anna@demo.test"), await api("piotr@demo.test")
    await rate(anna, f"/api/consultations/{ended['anna@demo.test']}/rating", 2)
    pushed = await live.until(
        "ratings:summary", lambda s: s["overall"]["consultation"]["count"] == 1
    )
    assert im(pushed)["consultation"]["average"] == 2.0
    await rate(piotr, f"/api/consultations/{ended['piotr@demo.test']}/rating", 5)
    await rate(piotr, f"/api/consultations/{ended['piotr@demo.test']}/service-rating", 4)
    pushed = await live.until("ratings:summary", lambda s: s["overall"]["service"]["count"] == 1)
    assert im(pushed)["consultation"] == {
        "count": 2,
        "average": 3.5,
        "distribution": [0, 1, 0, 0, 1],
    }
    (doctor,) = pushed["doctors"]
    assert doctor["doctor"] == {"id": house.user["id"], "name": "Dr Gregory House"}
    assert doctor["figures"]["service"]["average"] == 4.0
    assert await scheduler.call("GET", "/api/scheduler/ratings") == pushed

    # A change moves them too.
    await rate(anna, f"/api/consultations/{ended['anna@demo.test']}/rating", 4, expect=200)
    pushed = await live.until("ratings:summary", lambda s: im(s)["consultation"]["average"] == 4.5)
    assert im(pushed)["consultation"]["distribution"] == [0, 0, 0, 1, 1]
    # Only the last 30 days count.
    clock.advance(30 * DAY + 1)
    scheduler, anna = await api("scheduler@demo.test"), await api("anna@demo.test")
    later = await scheduler.call("GET", "/api/scheduler/ratings")
    assert later["specialties"] == [] and later["overall"]["consultation"]["count"] == 0
    refused = await anna.call("GET", "/api/scheduler/ratings", expect=403)
    assert refused["error"]["code"] == "not_a_scheduler"


async def test_a_doctor_sees_their_figures_and_comments_naming_no_patient(
    api, sockets, clock: ManualClock, database_url
):
    house, ended = await consulted(api, sockets, "anna@demo.test", "piotr@demo.test")
    anna, piotr = await api("anna@demo.test"), await api("piotr@demo.test")
    await rate(anna, f"/api/consultations/{ended['anna@demo.test']}/rating", 5, "Very kind.")
    clock.advance(60)
    await rate(piotr, f"/api/consultations/{ended['piotr@demo.test']}/rating", 3)
    await rate(piotr, f"/api/consultations/{ended['piotr@demo.test']}/service-rating", 2, "Slow")
    own = await house.call("GET", "/api/doctors/me/ratings")
    assert own["figures"]["consultation"]["average"] == 4.0
    assert own["figures"]["service"]["count"] == 1 and own["figures"]["booking"]["count"] == 0
    assert [(c["kind"], c["score"], c["comment"]) for c in own["comments"]] == [
        ("service", 2, "Slow"),
        ("consultation", 5, "Very kind."),
    ]
    assert own["comments"][0]["rated_on"] == clock.now().date().isoformat()
    text = json.dumps(own)
    for who in (anna.user, piotr.user):
        assert who["name"] not in text and who["email"] not in text
    assert all(
        set(c) == {"kind", "score", "comment", "rated_on", "specialty"} for c in own["comments"]
    )
    # Each patient whose comment was shown: one read entry.
    reads = await audited(database_url, house.user["id"], "rating.read")
    assert sorted(r.patient_id for r in reads) == sorted([anna.user["id"], piotr.user["id"]])
    # Another doctor has none; a patient is refused.
    grey = await (await api("dr.grey@demo.test")).call("GET", "/api/doctors/me/ratings")
    assert grey["comments"] == [] and grey["figures"]["consultation"]["count"] == 0
    refused = await anna.call("GET", "/api/doctors/me/ratings", expect=403)
    assert refused["error"]["code"] == "not_a_doctor"
    refused = await house.call("GET", "/api/patients/me/ratings", expect=403)
    assert refused["error"]["code"] == "not_a_patient"


async def test_metrics_export_the_averages(api, sockets, base_url):
    _, ended = await consulted(api, sockets, "anna@demo.test", "piotr@demo.test")
    anna, piotr = await api("anna@demo.test"), await api("piotr@demo.test")
    await rate(anna, f"/api/consultations/{ended['anna@demo.test']}/rating", 2)
    await rate(piotr, f"/api/consultations/{ended['piotr@demo.test']}/rating", 5)
    async with aiohttp.ClientSession() as session, session.get(base_url + "/metrics") as response:
        assert response.status == 200
        samples = parse_metrics(await response.text())
    labels = {"specialty": "internal-medicine"}
    assert samples[sample("consult_rating_average", kind="consultation", **labels)] == 3.5
    assert samples[sample("consult_ratings", kind="consultation", **labels)] == 2
    assert samples[sample("consult_ratings", kind="service", **labels)] == 0
    assert sample("consult_rating_average", kind="service", **labels) not in samples


async def test_two_tabs_rating_at_once_store_one_rating(api, sockets, database_url):
    _, ended = await consulted(api, sockets, "anna@demo.test")
    anna = await api("anna@demo.test")
    path = f"/api/consultations/{ended['anna@demo.test']}/rating"
    statuses = []

    async def put(score: int) -> None:
        async with anna.session.put(
            anna.base_url + path,
            json={"score": score},
            headers={"Authorization": f"Bearer {anna.token}"},
        ) as response:
            statuses.append(response.status)

    await asyncio.gather(put(3), put(4))
    assert sorted(statuses) == [200, 201]
    assert await count(database_url, t.ratings, t.ratings.c.kind == "consultation") == 1
    stored = (await rows(database_url, t.ratings))[0]
    assert stored.score in (3, 4) and (stored.changed_at is not None)
