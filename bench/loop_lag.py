"""The server's event-loop lag during a bench phase, from its own /metrics.

consult samples how late its loop wakes a short sleep into the histogram
``consult_loop_lag_seconds`` (consult/http/metrics.py). A phase's lag is the difference of the
bucket counts scraped at its start and at its end; its p99 is interpolated within the bucket
that holds it, as Prometheus's ``histogram_quantile`` does. The bare servers serve the same
histogram (bench/bare_loop_lag.py), so their lag is reported beside consult's; it has no
target.

Target (docs/performance.md): loop lag p99 under 5 ms in every phase but the connect storm,
for consult on SQLite (where the database's work ran on the loop's thread).
"""

from __future__ import annotations

import math
import re
import urllib.request
from typing import Any

TARGET_LAG_MS = 5.0
TARGETED_PHASES = ("join", "leave", "match", "chat")
_BUCKET = re.compile(r'^consult_loop_lag_seconds_bucket\{le="([^"]+)"\} ([0-9.e+-]+)$')

Buckets = dict[float, float]  # upper bound (seconds) -> cumulative count


def scrape(url: str) -> Buckets | None:
    """The loop-lag histogram's cumulative bucket counts now, or None (no such metric)."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return None
    buckets: Buckets = {}
    for line in text.splitlines():
        found = _BUCKET.match(line)
        if found:
            buckets[float(found.group(1))] = float(found.group(2))
    return buckets or None


def between(before: Buckets | None, after: Buckets | None) -> dict[str, Any] | None:
    """The samples taken between two scrapes: how many, their p99 (ms) and the share over the
    target."""
    if before is None or after is None:
        return None
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]  # the +Inf bucket
    if total <= 0:
        return {"samples": 0, "p99_ms": math.nan, "over_target": math.nan}
    rank = 0.99 * total
    p99 = math.inf
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if math.isinf(bound):
                p99 = lower  # as histogram_quantile: the highest finite bound
            else:
                share = (rank - below) / (count - below) if count > below else 1.0
                p99 = lower + (bound - lower) * share
            break
        lower, below = bound, count
    within = max(
        (c for b, c in zip(bounds, counts, strict=True) if b <= TARGET_LAG_MS / 1000), default=0.0
    )
    return {
        "samples": int(total),
        "p99_ms": round(p99 * 1000, 2),
        "over_target": round((total - within) / total, 4),
    }


def targets(phases: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``loop_lag_p99_ms_<phase>`` for each targeted phase that was measured."""
    met: dict[str, dict[str, Any]] = {}
    for name in TARGETED_PHASES:
        lag = (phases.get(name) or {}).get("server_loop_lag")
        if lag is None:
            continue
        value = lag["p99_ms"]
        ok = not math.isnan(value) and value < TARGET_LAG_MS
        met[f"loop_lag_p99_ms_{name}"] = {"value": value, "max": TARGET_LAG_MS, "met": ok}
    return met
