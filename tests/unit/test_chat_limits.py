"""The chat's limits as pure policy: the token bucket per (consultation, user) and the length."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consult.chat.limits import RateLimited, RateLimiter, check_length
from consult.clock import ManualClock
from consult.errors import Invalid


def test_a_burst_then_the_rate_and_each_key_apart() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, rate=10, burst=20)
    for _ in range(20):
        limiter.take(1, 7)
    with pytest.raises(RateLimited) as refused:
        limiter.take(1, 7)
    assert refused.value.code == "rate_limited" and refused.value.status == 429
    assert refused.value.retry_after == pytest.approx(0.1)
    assert refused.value.to_dict()["retry_after"] == refused.value.retry_after
    # Another participant, or the same one elsewhere, has a full bucket of its own.
    limiter.take(1, 8)
    limiter.take(2, 7)
    clock.advance(0.1)
    limiter.take(1, 7)
    with pytest.raises(RateLimited):
        limiter.take(1, 7)
    clock.advance(60)  # refills to the burst, never beyond
    for _ in range(20):
        limiter.take(1, 7)
    with pytest.raises(RateLimited):
        limiter.take(1, 7)


def test_a_clock_set_back_does_not_drain_the_bucket() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, rate=1, burst=2)
    limiter.take(1, 1)
    clock.advance(-3600)
    limiter.take(1, 1)
    with pytest.raises(RateLimited):
        limiter.take(1, 1)


def test_refilled_buckets_are_forgotten() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, rate=10, burst=5)
    for cid in range(2000):
        limiter.take(cid, 1)
        clock.advance(0.001)
    clock.advance(10)
    for _ in range(1024):
        limiter.take(0, 2)
        clock.advance(0.2)
    assert len(limiter) < 10


@given(
    gaps=st.lists(st.floats(min_value=0, max_value=2, allow_nan=False), min_size=1, max_size=200)
)
def test_never_more_than_the_burst_plus_the_rate_over_any_span(gaps: list[float]) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = ManualClock(start)
    limiter = RateLimiter(clock, rate=5, burst=4)
    granted: list[datetime] = []
    for gap in gaps:
        clock.advance(gap)
        try:
            limiter.take(1, 1)
            granted.append(clock.now())
        except RateLimited:
            pass
    for i, first in enumerate(granted):
        for j in range(i, len(granted)):
            span = (granted[j] - first) / timedelta(seconds=1)
            assert j - i + 1 <= 4 + 5 * span + 1e-6


def test_length() -> None:
    check_length("x" * 4000, 4000)
    with pytest.raises(Invalid) as refused:
        check_length("x" * 4001, 4000)
    assert refused.value.code == "message_too_long"
    assert refused.value.details == {"max_length": 4000, "length": 4001}
