"""Pure arithmetic of the schedulers' dashboard: wait statistics and the last hour's history
of the number waiting, from time intervals. No I/O; ``overview.py`` feeds it.

The history is rebuilt from consultation timestamps, since no queue snapshot is stored: a
consultation waited from ``created_at`` until it started (``started_at``) or, never started,
until it was cancelled (``ended_at``); a ticket still queued waits until now. What this cannot
see is listed in docs/protocol.md (interruptions, moves between queues).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from consult.dashboard.schemas import WaitPointOut

HISTORY_SPAN = timedelta(hours=1)
BUCKET = timedelta(minutes=5)


@dataclass(frozen=True)
class Waited:
    """One stretch of waiting: ``[start, end)``; ``end`` None while still waiting."""

    start: datetime
    end: datetime | None = None

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)


def wait_stats(waits: Sequence[float]) -> tuple[int | None, int | None]:
    """(longest, median) in whole seconds; (None, None) when nobody waits."""
    if not waits:
        return None, None
    return round(max(waits)), round(statistics.median(waits))


def breached(longest: int | None, threshold: int) -> bool:
    return longest is not None and longest > threshold


def wait_history(
    stretches: Iterable[Waited],
    now: datetime,
    span: timedelta = HISTORY_SPAN,
    bucket: timedelta = BUCKET,
) -> list[WaitPointOut]:
    """The buckets of the last ``span`` ending at ``now``, oldest first: the number waiting at
    each bucket's end, and the most waiting at once within it."""
    stretches = list(stretches)
    count = int(span / bucket)
    points = []
    for i in range(count):
        start = now - span + i * bucket
        end = start + bucket
        at_start = sum(1 for s in stretches if s.covers(start))
        # Changes inside (start, end]: leaving before joining at the same instant.
        changes = sorted(
            [(s.start, 1) for s in stretches if start < s.start <= end]
            + [(s.end, -1) for s in stretches if s.end is not None and start < s.end <= end]
        )
        running = peak = at_start
        for _, delta in changes:
            running += delta
            peak = max(peak, running)
        points.append(WaitPointOut(start=start, end=end, waiting=running, peak=peak))
    return points
