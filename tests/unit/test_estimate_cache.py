"""Per-place estimates are reused while the queue's inputs stay the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consult.queue import eta
from consult.queue.tickets import EstimateCache

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MODEL = eta.DurationModel.fit([], "chat")


def test_same_inputs_share_one_table_until_the_ttl():
    cache = EstimateCache(ttl=timedelta(seconds=15))
    table = cache.table(NOW, "cardiology", "chat", 2, [130.0], MODEL)
    table[0] = eta.estimate_wait(0, 2, [130.0], MODEL)
    # Busy for 2 min 10 s or 2 min 50 s: the same whole minutes, the same estimates.
    assert cache.table(NOW, "cardiology", "chat", 2, [170.0], MODEL) is table
    assert cache.table(NOW + timedelta(seconds=16), "cardiology", "chat", 2, [130.0], MODEL) == {}


def test_a_change_of_doctors_or_queue_gives_a_fresh_table():
    cache = EstimateCache()
    table = cache.table(NOW, "cardiology", "chat", 2, [130.0], MODEL)
    table[0] = eta.estimate_wait(0, 2, [130.0], MODEL)
    assert cache.table(NOW, "cardiology", "chat", 3, [130.0], MODEL) == {}
    assert cache.table(NOW, "cardiology", "chat", 2, [200.0], MODEL) == {}
    assert cache.table(NOW, "dermatology", "chat", 2, [130.0], MODEL) == {}
