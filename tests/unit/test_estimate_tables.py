"""Wait-estimate tables are computed off the event loop, once per queue state, and reused."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consult.estimates import wait_model
from consult.estimates.tables import EstimateTables

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MODEL = wait_model.DurationModel.fit([600.0, 900.0, 1200.0], "chat")


async def test_a_table_is_the_model_s_estimates_and_is_reused_until_the_ttl():
    tables = EstimateTables(max_places=61, ttl=timedelta(seconds=15))
    first = await tables.table(NOW, "cardiology", "chat", 5, 2, [130.0], MODEL)
    assert first[:5] == wait_model.estimate_queue(5, 2, [130.0], MODEL)
    # Busy for 2 min 10 s or 2 min 50 s: the same whole minutes, the same table.
    assert await tables.table(NOW, "cardiology", "chat", 5, 2, [170.0], MODEL) is first
    later = NOW + timedelta(seconds=16)
    # Past the ttl the old table is answered while a new one is computed, then the new one.
    assert await tables.table(later, "cardiology", "chat", 5, 2, [130.0], MODEL) is first
    await tables.settle()
    fresh = await tables.table(later, "cardiology", "chat", 5, 2, [130.0], MODEL)
    assert fresh is not first and fresh[:5] == first[:5]


async def test_a_change_of_doctors_online_is_never_answered_from_an_old_table():
    tables = EstimateTables(max_places=61)
    one = await tables.table(NOW, "cardiology", "chat", 3, 1, [300.0], MODEL)
    none = await tables.table(NOW, "cardiology", "chat", 3, 0, [], MODEL)
    assert all(e.no_doctor_online for e in none) and not one[0].no_doctor_online
    two = await tables.table(NOW, "cardiology", "chat", 3, 2, [300.0], MODEL)
    assert two[:3] == wait_model.estimate_queue(3, 2, [300.0], MODEL)


async def test_busy_minutes_moving_serve_the_old_table_then_the_new_one():
    tables = EstimateTables(max_places=61, refresh=timedelta(seconds=2))
    old = await tables.table(NOW, "cardiology", "chat", 4, 1, [60.0], MODEL)
    # Within the refresh interval the old table stands, and nothing is computed.
    soon = NOW + timedelta(seconds=1)
    assert await tables.table(soon, "cardiology", "chat", 4, 1, [900.0], MODEL) is old
    await tables.settle()
    assert await tables.table(soon, "cardiology", "chat", 4, 1, [900.0], MODEL) is old
    # After it, the old table is answered once more while the new one is computed.
    later = NOW + timedelta(seconds=3)
    assert await tables.table(later, "cardiology", "chat", 4, 1, [900.0], MODEL) is old
    await tables.settle()
    new = await tables.table(later, "cardiology", "chat", 4, 1, [900.0], MODEL)
    assert new[:4] == wait_model.estimate_queue(4, 1, [900.0], MODEL) != old[:4]


async def test_a_deeper_place_than_the_table_reaches_is_computed_before_answering():
    tables = EstimateTables(max_places=61)
    short = await tables.table(NOW, "cardiology", "chat", 2, 1, [60.0], MODEL)
    deep = await tables.table(NOW, "cardiology", "chat", 40, 1, [60.0], MODEL)
    assert len(short) < 40 <= len(deep)
    assert deep[:40] == wait_model.estimate_queue(40, 1, [60.0], MODEL)
    # Never deeper than max_places.
    capped = await tables.table(NOW, "cardiology", "chat", 500, 1, [60.0], MODEL)
    assert len(capped) == 61


def test_a_request_arriving_as_a_table_finishes_is_answered_and_does_not_hang_the_loop():
    """Issue 11, A: the request spun at 100 % of a core for good, never yielding to the loop. A
    loop that never yields cannot be stopped from inside it, so the scenario runs in a process
    of its own, killed after the deadline."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.unit.estimates_race"],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("the event loop hung: no answer within 30 s") from None
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "answered"
