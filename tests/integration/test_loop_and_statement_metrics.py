"""/metrics shows how late the event loop runs (``consult_loop_lag_seconds``) and how long
database statements take (``consult_db_statement_seconds``); a statement slower than
CONSULT_SLOW_STATEMENT is logged once, by name (consult/storage/timing.py), on both backends."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import sqlalchemy as sa

from consult.http.routing import SERVICES
from consult.storage.timing import statement_name
from tests.metrics_reader import Samples, parse_metrics, sample
from tests.support import ApiClient

# Counts to a million on either backend: far over 20 ms, a statement the app never runs.
SLOW_SQL = (
    "WITH RECURSIVE counter(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM counter "
    "WHERE n < 1000000) SELECT count(*) FROM counter"
)


async def _scrape(client: ApiClient) -> Samples:
    async with client.session.get(client.base_url + "/metrics") as response:
        assert response.status == 200
        return parse_metrics(await response.text())


def _over(samples: Samples, name: str, bound: str, **labels: str) -> float:
    """How many observations of histogram ``name`` were above ``bound`` seconds."""
    total = samples[sample(f"{name}_count", **labels)]
    return total - samples[sample(f"{name}_bucket", le=bound, **labels)]


async def test_a_blocked_loop_shows_in_the_lag_histogram(api: Any, server: Any) -> None:
    client = await api()
    before = _over(await _scrape(client), "consult_loop_lag_seconds", "0.25")
    time.sleep(0.6)  # the server's loop is this test's: nothing runs meanwhile
    deadline = time.monotonic() + 10
    while True:
        after = _over(await _scrape(client), "consult_loop_lag_seconds", "0.25")
        if after > before or time.monotonic() > deadline:
            break
    assert after >= before + 1, "a tick woke more than 0.25 s late"
    samples = await _scrape(client)
    assert samples[sample("consult_loop_lag_seconds_count")] >= 1
    # Statements were timed too: the scrapes' own overview reads, and the demo's inserts.
    names = {dict(labels).get("statement") for (name, labels) in samples if "statement" in name}
    assert "INSERT INTO users" in names, sorted(n for n in names if n)


async def test_a_slow_statement_is_logged_once_by_name(
    api: Any, server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = await api()
    name = statement_name(SLOW_SQL)
    assert name == "WITH … FROM counter"
    db = server.app[SERVICES].db
    with caplog.at_level(logging.WARNING, logger="consult.storage.timing"):
        async with db.reader() as uow:
            assert (await uow.conn.execute(sa.text(SLOW_SQL))).scalar() == 1_000_000
    # (Under load a commit elsewhere may be slow too: only this statement's lines count.)
    slow = [
        r.getMessage()
        for r in caplog.records
        if r.name == "consult.storage.timing" and name in r.getMessage()
    ]
    assert len(slow) == 1 and slow[0].startswith(f"slow statement: {name} took "), slow
    assert "(over 20 ms)" in slow[0]
    samples = await _scrape(client)
    assert _over(samples, "consult_db_statement_seconds", "0.02", statement=name) == 1


def test_statements_are_named_by_their_first_words_and_table() -> None:
    assert statement_name("INSERT INTO messages (a) VALUES (?)") == "INSERT INTO messages"
    assert statement_name("UPDATE tickets SET x=1") == "UPDATE tickets"
    assert statement_name("DELETE FROM sessions WHERE 1") == "DELETE FROM sessions"
    assert (
        statement_name("SELECT a.id FROM consultations AS a JOIN x")
        == "SELECT … FROM consultations"
    )
    assert statement_name("BEGIN IMMEDIATE") == "BEGIN IMMEDIATE"
