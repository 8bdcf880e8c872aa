"""The patient's access history ("who saw my data", GET /api/patients/me/access-log) on each
backend: a doctor's and a scheduler's reads of the patient's data listed with who, what and the
kind of client; only the patient's own; pages; refusals; the read audited but not listed; and
migration 0015 (the client column) over rows written before it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from consult.storage import tables as t
from consult.storage.migrate import upgrade
from tests import backends
from tests.integration.test_platform import downgrade
from tests.integration.test_queue import IM
from tests.support import ApiClient, png, rows

LOG = "/api/patients/me/access-log"


async def upload(client: ApiClient) -> int:
    form = aiohttp.FormData()
    form.add_field("description", "Rash, day 3")
    form.add_field("file", png(), filename="rash.png", content_type="application/octet-stream")
    return int((await client.call("POST", "/api/documents", data=form, expect=201))["id"])


async def with_cookie(client: ApiClient, path: str) -> int:
    """A GET as the pages send it: the session cookie, no bearer header."""
    cookie = {"Cookie": f"consult_session={client.token}"}
    async with client.session.get(client.base_url + path, headers=cookie) as response:
        await response.read()
        return response.status


def seen(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["by"], e["who"], e["what"], e["client"]) for e in entries]


async def test_the_patient_sees_who_read_her_data_from_which_client(api, sockets, database_url):
    anna = await api("anna@demo.test")
    aid = anna.user["id"]
    # Waiting, no doctor online yet: the scheduler's overview shows her.
    ticket = await anna.call(
        "POST", "/api/consultations", {"specialty": "internal-medicine", "form": "chat"}, expect=201
    )
    cid = ticket["consultation"]["id"]
    scheduler = await api("scheduler@demo.test")
    await scheduler.call("GET", "/api/scheduler/queues")
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    assert (await house_ws.next("queue:offer"))["consultation"]["id"] == cid
    assert (await house_ws.emit("queue:accept", {"consultation_id": cid}))["ok"]
    doc = await upload(anna)
    # The doctor reads her record over the API, downloads her document from the console page
    # and reads the transcript over the live socket.
    await house.call("GET", f"/api/patients/{aid}/record")
    assert await with_cookie(house, f"/api/documents/{doc}/content") == 200
    assert (await house_ws.emit("chat:resume", {"consultation_id": cid}))["ok"]
    # Another patient reads his own record: not Anna's history.
    piotr = await api("piotr@demo.test")
    await piotr.call("GET", "/api/patients/me/record")

    log = await anna.call("GET", LOG + "?others=true")
    house_name = house.user["name"]
    assert seen(log["entries"]) == [
        ("doctor", house_name, "transcript read", "socket"),
        ("doctor", house_name, "document downloaded", "page"),
        ("doctor", house_name, "record read", "api"),
        ("scheduler", "scheduler", "seen waiting in the queue overview", "api"),
    ]
    assert log["next"] is None
    newest = log["entries"][0]
    assert newest["doctor"] == {"id": house.user["id"], "name": house_name}
    assert newest["action"] == "chat.read" and newest["consultation_id"] == cid
    assert log["entries"][-1]["doctor"] is None
    stamps = [datetime.fromisoformat(e["at"]) for e in log["entries"]]
    assert stamps == sorted(stamps, reverse=True) and all(s.tzinfo for s in stamps)

    # With her own reads: her upload is a write (not listed), her first look at the history
    # is audited but never listed.
    mine = await anna.call("GET", LOG)
    assert seen(mine["entries"]) == seen(log["entries"])
    await anna.call("GET", "/api/patients/me/record")
    mine = await anna.call("GET", LOG)
    assert seen(mine["entries"])[0] == ("you", "you", "record read", "api")
    assert {e["action"] for e in mine["entries"]}.isdisjoint({"access_log.read", "chat.write"})
    audited = await rows(database_url, t.audit_log, t.audit_log.c.action == "access_log.read")
    assert [(r.actor_id, r.patient_id, r.client, r.allowed) for r in audited] == [
        (aid, aid, "api", True)
    ] * 3

    # Only his own: the doctor's reads of Anna are not in Piotr's history.
    assert seen((await piotr.call("GET", LOG))["entries"]) == [("you", "you", "record read", "api")]

    # Pages of two, newest first, each older than the cursor, until next is null.
    walked, cursor = [], None
    while True:
        page = await anna.call("GET", LOG + "?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert len(page["entries"]) <= 2
        walked += page["entries"]
        cursor = page["next"]
        if cursor is None:
            break
        assert cursor == page["entries"][-1]["id"]
    everything = await anna.call("GET", LOG + "?limit=100")
    assert [e["id"] for e in walked] == [e["id"] for e in everything["entries"]]
    assert len(walked) == 5
    older = await anna.call("GET", LOG + f"?others=true&cursor={log['entries'][1]['id']}")
    assert older["entries"] == log["entries"][2:]


async def test_only_a_patient_reads_the_history_and_bad_queries_are_refused(api, database_url):
    house = await api("dr.house@demo.test")
    scheduler = await api("scheduler@demo.test")
    for client in (house, scheduler):
        refused = await client.call("GET", LOG, expect=403)
        assert refused["error"]["code"] == "not_a_patient"
    anonymous = await api()
    assert (await anonymous.call("GET", LOG, expect=401))["error"]["code"] == "not_authenticated"
    anna = await api("anna@demo.test")
    for query, code in (
        ("cursor=abc", "invalid_cursor"),
        ("cursor=0", "invalid_cursor"),
        ("cursor=%EF%BC%91", "invalid_cursor"),  # a full-width 1
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("others=yes", "invalid_others"),
    ):
        assert (await anna.call("GET", f"{LOG}?{query}", expect=400))["error"]["code"] == code
    # Each refusal audited once, as a refusal of that route; no history read was.
    a = t.audit_log.c
    denied = await rows(database_url, t.audit_log, a.actor_id == house.user["id"], ~a.allowed)
    assert [r.detail for r in denied] == [f"403 not_a_patient: GET {LOG}"]
    assert denied[0].client == "api"
    assert await rows(database_url, t.audit_log, a.action == "access_log.read") == []


@pytest.fixture(params=backends.BACKENDS)
def database_at_0014(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from backends.database_at(request.param, "0014", tmp_path)


async def test_migration_0015_adds_the_client_and_keeps_the_log_append_only(database_at_0014):
    """Rows written before 0015 read with no client; the log stays append-only through the
    upgrade and the downgrade (no table copy dropped SQLite's triggers)."""
    url = database_at_0014
    old = {
        "at": datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        "actor_id": 7,
        "actor_role": "doctor",
        "action": "record.read",
        "patient_id": 3,
        "allowed": True,
    }
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO audit_log (at, actor_id, actor_role, action, patient_id, allowed) "
                    "VALUES (:at, :actor_id, :actor_role, :action, :patient_id, :allowed)"
                ),
                old,
            )
        await engine.dispose()
        backends.off_loop(upgrade, url, "0015")
        async with engine.connect() as conn:
            (row,) = (await conn.execute(sa.text("SELECT * FROM audit_log"))).all()
            assert (row.patient_id, row.action, row.client) == (3, "record.read", None)
        await _refuses_changes(engine)
        backends.off_loop(downgrade, url, "0014")
        await _refuses_changes(engine)
        backends.off_loop(upgrade, url, "head")
    finally:
        await engine.dispose()


async def _refuses_changes(engine: Any) -> None:
    await engine.dispose()  # the schema changed under the pooled connections
    for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(sa.text(statement))
