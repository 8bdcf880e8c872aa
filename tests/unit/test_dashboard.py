"""The dashboard's pure parts: wait statistics, the last hour's history, the breach rule, the
Prometheus text, and how live pushes are coalesced."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from consult.dashboard.schemas import OverviewOut
from consult.dashboard.wait_statistics import Waited, breached, wait_history, wait_stats
from consult.http import metrics
from consult.settings import Settings
from consult.signaling.scheduler_push import SCHEDULERS_ROOM, SchedulerPush
from tests.metrics_reader import parse_metrics, sample, types

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def minutes(m: float) -> datetime:
    return NOW + timedelta(minutes=m)


def test_wait_stats_give_the_longest_and_the_median_in_whole_seconds():
    assert wait_stats([]) == (None, None)
    assert wait_stats([10.4]) == (10, 10)
    assert wait_stats([30.0, 10.0, 20.6, 100.0]) == (100, 25)


def test_a_breach_is_a_wait_strictly_above_the_threshold():
    assert not breached(None, 900)
    assert not breached(900, 900)
    assert breached(901, 900)


def test_the_history_has_twelve_buckets_ending_now():
    points = wait_history([], NOW)
    assert len(points) == 12
    assert points[0].start == minutes(-60) and points[-1].end == NOW
    assert all(b.start == a.end for a, b in zip(points, points[1:], strict=False))
    assert all(p.waiting == 0 and p.peak == 0 for p in points)


def test_the_history_counts_at_each_end_and_the_peak_within():
    stretches = [
        Waited(minutes(-70)),  # still waiting, since before the hour
        Waited(minutes(-12), minutes(-6.5)),  # came and went within two buckets
        Waited(minutes(-7), minutes(-6)),  # came and went inside one bucket
        Waited(minutes(-1)),  # just came
    ]
    points = wait_history(stretches, NOW)
    assert [(p.waiting, p.peak) for p in points] == [(1, 1)] * 9 + [(2, 2), (1, 3), (2, 2)]


def test_leaving_and_joining_at_the_same_instant_do_not_overlap():
    stretches = [Waited(minutes(-4), minutes(-2)), Waited(minutes(-2))]
    assert (wait_history(stretches, NOW)[-1].peak, wait_history(stretches, NOW)[-1].waiting) == (
        1,
        1,
    )


@given(
    st.lists(st.tuples(st.integers(-90, 0), st.one_of(st.none(), st.integers(0, 90))), max_size=30)
)
def test_the_bucket_figures_agree_with_counting_minute_by_minute(raw):
    stretches = [
        Waited(minutes(start), None if length is None else minutes(start + length))
        for start, length in raw
    ]
    points = wait_history(stretches, NOW)
    for p in points:
        at_end = sum(1 for s in stretches if s.covers(p.end))
        assert p.waiting == at_end
        # Every change is on a whole minute: sampling each minute finds the peak.
        samples = [p.start + timedelta(minutes=m) for m in range(6)]
        assert p.peak == max(sum(1 for s in stretches if s.covers(t)) for t in samples)


def overview(**changes: Any) -> OverviewOut:
    figures = {
        "waiting": 2,
        "offered": 1,
        "longest_wait_seconds": 950,
        "median_wait_seconds": 500,
        "doctors": {"online": 3, "busy": 1, "away": 2},
        "in_progress": 4,
        "breach": True,
        "history": [],
    }
    return OverviewOut.model_validate(
        {
            "at": NOW,
            "wait_breach_seconds": 900,
            "history_bucket_seconds": 300,
            "breaches": 1,
            "specialties": [
                {
                    **figures,
                    "specialty": {"code": 'we"ird\\', "name": "Weird"},
                    "forms": [{**figures, "form": "chat"}],
                    "tickets": [],
                    "doctor_list": [],
                    **changes,
                }
            ],
        }
    )


def test_metrics_text_escapes_labels_and_splits_doctors_by_state():
    text = metrics.Metrics().render(overview()).decode()
    assert types(text)["consult_queue_waiting"] == "gauge"
    # Label values escape the backslash and the double quote.
    assert 'specialty="we\\"ird\\\\"' in text
    samples = parse_metrics(text)
    weird = 'we"ird\\'
    assert samples[sample("consult_queue_waiting", specialty=weird, form="chat")] == 2
    assert samples[sample("consult_queue_longest_wait_seconds", specialty=weird, form="chat")] == (
        950
    )
    assert samples[sample("consult_queue_breach", specialty=weird, form="chat")] == 1
    assert samples[sample("consult_doctors", specialty=weird, state="free")] == 2
    assert samples[sample("consult_doctors", specialty=weird, state="busy")] == 1
    assert samples[sample("consult_doctors", specialty=weird, state="away")] == 2
    assert samples[sample("consult_consultations_in_progress", specialty=weird)] == 4
    assert samples[sample("consult_queue_wait_breach_threshold_seconds")] == 900


class FakeManager:
    def __init__(self) -> None:
        self.rooms: dict[str, list[str]] = {SCHEDULERS_ROOM: ["sid-1"]}

    def get_participants(self, namespace: str, room: str) -> Any:
        for sid in self.rooms.get(room, []):
            yield sid, sid


class FakeSio:
    def __init__(self) -> None:
        self.manager = FakeManager()
        self.emits: list[tuple[str, float]] = []

    async def emit(self, event: str, data: Any, to: str) -> None:
        assert to == SCHEDULERS_ROOM
        self.emits.append((event, asyncio.get_running_loop().time()))


class FakeDashboard:
    def __init__(self) -> None:
        self.calls = 0
        self.started: list[float] = []

    async def overview(self) -> OverviewOut:
        self.calls += 1
        self.started.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.01)
        return overview()


async def test_a_burst_of_changes_is_one_push_and_pushes_are_spaced():
    sio, dashboard = FakeSio(), FakeDashboard()
    push = SchedulerPush(sio, dashboard, interval=0.1, delay=0.01)  # type: ignore[arg-type]
    for _ in range(50):
        push.changed()
    await asyncio.sleep(0.05)
    assert dashboard.calls == 1 and [e for e, _ in sio.emits] == ["scheduler:overview"]
    # Changes keep coming: pushes are at least the interval apart, and the last change is
    # always followed by a push.
    loop = asyncio.get_running_loop()
    last_change = 0.0
    for _ in range(30):
        push.changed()
        last_change = loop.time()
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    times = dashboard.started
    # The interval runs from each push's start, read just before overview() here: 10 ms of
    # slack for a busy machine preempting the loop between the two readings.
    assert all(b - a >= 0.09 for a, b in zip(times, times[1:], strict=False))
    assert times[-1] >= last_change and len(sio.emits) == len(times)
    assert len(times) <= 1 + (times[-1] - times[0]) / 0.1 + 1
    await push.close()


async def test_nobody_watching_in_a_single_process_costs_nothing():
    sio, dashboard = FakeSio(), FakeDashboard()
    sio.manager.rooms.clear()
    push = SchedulerPush(sio, dashboard, interval=0.01, delay=0.0)  # type: ignore[arg-type]
    push.changed()
    await asyncio.sleep(0.03)
    assert dashboard.calls == 0
    # With Redis the room spans processes: always push.
    shared = SchedulerPush(
        sio,
        dashboard,
        interval=0.01,
        delay=0.0,
        local_audience=False,  # type: ignore[arg-type]
    )
    shared.changed()
    await asyncio.sleep(0.03)
    assert dashboard.calls == 1
    await push.close()
    await shared.close()


async def test_close_cancels_a_pending_push():
    sio, dashboard = FakeSio(), FakeDashboard()
    push = SchedulerPush(sio, dashboard, interval=1, delay=1)  # type: ignore[arg-type]
    push.changed()
    await push.close()
    assert dashboard.calls == 0 and sio.emits == []


def test_the_breach_threshold_is_a_setting():
    assert Settings().wait_breach == 900
    assert Settings.from_env({"CONSULT_WAIT_BREACH": "120"}).wait_breach == 120
