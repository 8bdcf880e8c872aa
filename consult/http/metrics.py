"""The queues overview and this process's calls as Prometheus metrics, in the text exposition
format (version 0.0.4), with the process's standard metrics (``process_*``, ``python_gc_*``,
``python_info``), written by ``prometheus_client``.

The consult figures are not kept in the library's gauges and counters between scrapes: the
handler reads them on each scrape (the queues from the database, the calls from this process's
media rooms, both asynchronous) and :class:`Figures` turns that reading into metric families.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Iterator

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from consult.dashboard.schemas import OverviewOut
from consult.media.stats import CallFigures
from consult.ratings.policy import RatingKind
from consult.ratings.schemas import RatingsSummaryOut
from consult.storage.timing import StatementTimer

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Every connectionState of aiortc's peers: each is shown, 0 when no leg is in it.
LEG_STATES = ("new", "connecting", "connected", "disconnected", "failed", "closed")
KINDS = ("audio", "video")


# How often the loop-lag sampler's sleep is asked to wake (seconds).
LAG_TICK = 0.1
# Milliseconds resolved from 1 to 10: a loop that waits on the disk lags a few of them.
LAG_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.004,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
STATEMENT_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class Metrics:
    """One app's /metrics. Its registry is its own, not prometheus_client's global one, so
    several apps in one process (the tests') do not collide; it holds the standard collectors,
    which read the process's figures at each scrape, and the histograms of the loop's lag and
    of the database statements' durations, filled as they happen."""

    def __init__(self, statements: StatementTimer | None = None) -> None:
        # Only counts, no ``*_created`` creation times (the figures' counters write none
        # either). The library's switch is global and read at each scrape; it is thrown here,
        # when the app is built, not when the module is imported (importing changes nothing).
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.loop_lag = Histogram(
            "consult_loop_lag_seconds",
            f"How late the event loop woke a sleep of {LAG_TICK} s (sampled every tick).",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.statement_seconds = Histogram(
            "consult_db_statement_seconds",
            "Duration of database statements (and commits), by statement name.",
            ("statement",),
            buckets=STATEMENT_BUCKETS,
            registry=self.registry,
        )
        self._statement_children: dict[str, Histogram] = {}
        if statements is not None:
            statements.observers.append(self._observe_statement)

    def _observe_statement(self, name: str, seconds: float) -> None:
        # Each statement pays this: the labelled child is looked up once per name.
        child = self._statement_children.get(name)
        if child is None:
            child = self._statement_children[name] = self.statement_seconds.labels(name)
        child.observe(seconds)

    async def sample_loop_lag(self) -> None:
        """Forever: how late each :data:`LAG_TICK` sleep wakes (a blocked loop wakes it late)."""
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(LAG_TICK)
            self.loop_lag.observe(max(0.0, time.perf_counter() - asked - LAG_TICK))

    def render(
        self,
        overview: OverviewOut,
        calls: CallFigures | None = None,
        ratings: RatingsSummaryOut | None = None,
    ) -> bytes:
        """The text of one scrape: ``overview``, ``calls`` and ``ratings`` as just read, then
        the standard metrics."""
        return generate_latest(_Scrape(Figures(overview, calls, ratings), self.registry))


METRICS = web.AppKey("metrics", Metrics)


async def loop_lag_lifetime(app: web.Application) -> AsyncIterator[None]:
    """The loop-lag sampler runs while the app does."""
    task = asyncio.create_task(app[METRICS].sample_loop_lag())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class _Scrape(Collector):
    """Several collectors as one. The figures are not registered in the app's registry: a
    collector's ``collect`` cannot await the database, so each scrape gets a :class:`Figures`
    of its own, and concurrent scrapes share no state."""

    def __init__(self, *parts: Collector) -> None:
        self._parts = parts

    def collect(self) -> Iterator[Metric]:
        for part in self._parts:
            yield from part.collect()


class Figures(Collector):
    """The overview's gauges, the calls' gauges and counters and the ratings' gauges, from one
    reading."""

    def __init__(
        self,
        overview: OverviewOut,
        calls: CallFigures | None,
        ratings: RatingsSummaryOut | None = None,
    ) -> None:
        self._overview = overview
        self._calls = calls
        self._ratings = ratings

    def collect(self) -> Iterator[Metric]:
        yield from _queues(self._overview)
        if self._calls is not None:
            yield from _calls(self._calls)
        if self._ratings is not None:
            yield from _ratings(self._ratings)


Samples = Iterable[tuple[tuple[str, ...], float]]


def _gauge(name: str, help_: str, labels: tuple[str, ...], samples: Samples) -> Metric:
    return _filled(GaugeMetricFamily(name, help_, labels=labels), samples)


def _counter(name: str, help_: str, labels: tuple[str, ...], samples: Samples) -> Metric:
    """``name`` without ``_total``: the samples get it (and no ``_created`` sample is written)."""
    return _filled(CounterMetricFamily(name, help_, labels=labels), samples)


def _filled(family: GaugeMetricFamily | CounterMetricFamily, samples: Samples) -> Metric:
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


def _queues(overview: OverviewOut) -> Iterator[Metric]:
    specialties = overview.specialties

    def per_form(field: str) -> Iterator[tuple[tuple[str, ...], float]]:
        for s in specialties:
            for f in s.forms:
                yield (s.specialty.code, str(f.form)), float(getattr(f, field) or 0)

    per_specialty_form = ("specialty", "form")
    yield _gauge(
        "consult_queue_waiting",
        "Patients queued (waiting, or offered to a doctor), per specialty and form.",
        per_specialty_form,
        per_form("waiting"),
    )
    yield _gauge(
        "consult_queue_longest_wait_seconds",
        "How long the longest-waiting queued patient has waited (0 when none).",
        per_specialty_form,
        per_form("longest_wait_seconds"),
    )
    yield _gauge(
        "consult_queue_median_wait_seconds",
        "Median wait of the queued patients (0 when none).",
        per_specialty_form,
        per_form("median_wait_seconds"),
    )
    yield _gauge(
        "consult_queue_breach",
        f"1 when the longest wait exceeds {overview.wait_breach_seconds} s.",
        per_specialty_form,
        per_form("breach"),
    )
    yield _gauge(
        "consult_doctors",
        "Doctors present for a specialty, by state: free and busy (online), away.",
        ("specialty", "state"),
        (
            ((s.specialty.code, state), float(count))
            for s in specialties
            for state, count in (
                ("free", s.doctors.online - s.doctors.busy),
                ("busy", s.doctors.busy),
                ("away", s.doctors.away),
            )
        ),
    )
    yield _gauge(
        "consult_consultations_in_progress",
        "Active consultations, per specialty.",
        ("specialty",),
        (((s.specialty.code,), float(s.in_progress)) for s in specialties),
    )
    yield _gauge(
        "consult_queue_wait_breach_threshold_seconds",
        "The wait above which a queue is in breach (CONSULT_WAIT_BREACH).",
        (),
        [((), float(overview.wait_breach_seconds))],
    )


def _calls(calls: CallFigures) -> Iterator[Metric]:
    """The media rooms of this process (each process reports its own calls)."""
    relayed = calls.relayed
    yield _gauge(
        "consult_calls_in_progress",
        "Calls (voice or video) with a media room in this process.",
        (),
        [((), float(calls.calls))],
    )
    yield _gauge(
        "consult_call_legs",
        "Participants' connections with this process's media rooms, by connection state.",
        ("state",),
        (((state,), float(sum(leg.state == state for leg in calls.legs))) for state in LEG_STATES),
    )
    yield _counter(
        "consult_call_relayed_frames",
        "Frames (audio: packets of 20 ms) forwarded to participants since the process started.",
        ("kind",),
        (((kind,), float(relayed.frames.get(kind, 0))) for kind in KINDS),
    )
    yield _counter(
        "consult_call_relayed_packets",
        "RTP packets sent to participants since the process started.",
        ("kind",),
        (((kind,), float(relayed.packets.get(kind, 0))) for kind in KINDS),
    )
    yield _counter(
        "consult_call_keyframe_requests",
        "Keyframe requests (PLI) sent to participants' video senders since the process started.",
        (),
        [((), float(relayed.keyframe_requests))],
    )
    yield _gauge(
        "consult_call_leg_rtt_seconds",
        "Round-trip time of each connected leg, from the participant's receiver reports.",
        ("consultation", "user"),
        (
            ((leg.consultation_id, leg.user_id), leg.rtt_seconds)
            for leg in calls.legs
            if leg.rtt_seconds is not None
        ),
    )
    yield _gauge(
        "consult_call_leg_loss_ratio",
        "Fraction of packets lost over the leg's life, per kind and direction "
        "(in: participant -> server, out: server -> participant).",
        ("consultation", "user", "kind", "direction"),
        (
            ((leg.consultation_id, leg.user_id, kind, direction), loss)
            for leg in calls.legs
            for (kind, direction), loss in sorted(leg.loss.items())
        ),
    )
    yield _gauge(
        "consult_call_recordings_in_progress",
        "Call recordings being written by this process.",
        (),
        [((), float(calls.recordings))],
    )


def _ratings(summary: RatingsSummaryOut) -> Iterator[Metric]:
    """The ratings of the last 30 days per specialty and kind (consultation, booking, service):
    every rated specialty's count for each kind, and the average where there is one."""
    figures = [
        (s.specialty.code, kind.value, getattr(s.figures, kind.value))
        for s in summary.specialties
        for kind in RatingKind
    ]
    per_specialty_kind = ("specialty", "kind")
    yield _gauge(
        "consult_rating_average",
        f"Average rating (1-5) given in the last {summary.days} days, per specialty and kind "
        "(no sample for a kind not rated).",
        per_specialty_kind,
        (((code, kind), f.average) for code, kind, f in figures if f.average is not None),
    )
    yield _gauge(
        "consult_ratings",
        f"Ratings given in the last {summary.days} days, per specialty and kind.",
        per_specialty_kind,
        (((code, kind), float(f.count)) for code, kind, f in figures),
    )
