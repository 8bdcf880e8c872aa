"""Wait estimate for the walk-in queue: a range in whole minutes, never a false precision.

The model
---------
A patient with ``k`` patients ahead of them, facing ``n`` doctors online of whom ``b`` are
busy, is served when a doctor frees up and nobody is left ahead. The ``f = n - b`` free doctors
take the first ``f`` patients ahead at once (and from then on count as busy with a consultation
that has just begun), so the patient waits for the ``m = k + 1 - f``-th consultation to end
across the ``n`` doctors; ``m <= 0`` means no wait.

The durations ``D`` are lognormal, fitted from the queue's recent consultations
(``durations.py``); the probability that the ``m``-th ending has come by a time, and so the
distribution of the wait, is computed directly from them (``completions.py``).

The range runs from the 5 % to the 80 % quantile of that wait, searched on whole minutes: a
75 % range set to the left, because waits are skewed to the right and so its middle sits near
the median wait (a central range's middle would overshoot). It is rounded outwards: to whole
minutes, and to 5 minutes from an hour on; it is at least one minute wide. By construction more
patients ahead never shorten the range and another doctor never lengthens it. With no doctor
online there is no upper bound and the estimate is flagged; so is a wait whose 80 % quantile
lies beyond ``HORIZON_SECONDS``.

Not modelled (the benchmark ``bench/eta_accuracy.py`` measures what this costs): doctors going
on- or offline during the wait, patients ahead leaving the queue, doctors shared with other
queues (pass the doctors and consultations that serve this queue).

Cost: a few milliseconds per estimate; ``estimate_queue`` shares the work across a whole queue.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from consult.estimates.completions import HORIZON_SECONDS, Completions, probit
from consult.estimates.durations import DurationModel

__all__ = [
    "HORIZON_SECONDS",
    "Basis",
    "DurationModel",
    "Estimate",
    "estimate_queue",
    "estimate_wait",
    "wait_quantile",
]

LOW_QUANTILE, HIGH_QUANTILE = 0.05, 0.80
"""A 75 % range set to the left: waits skew right, so its middle sits near the median."""
COARSE_FROM_MINUTES = 60


@dataclass(frozen=True)
class Basis:
    """What an estimate rests on: to show, log and store beside it."""

    position: int
    doctors_online: int
    doctors_busy: int
    median_duration_seconds: int
    duration_samples: int
    from_history: bool

    @property
    def text(self) -> str:
        source = f"{self.duration_samples} recent" if self.from_history else "usual"
        return (
            f"{self.position} ahead, {self.doctors_online} doctors online "
            f"({self.doctors_busy} busy), median {round(self.median_duration_seconds / 60)} min "
            f"from {source} consultations"
        )


@dataclass(frozen=True)
class Estimate:
    """What the patient is shown: ``low_seconds``..``high_seconds``, whole minutes.

    ``high_seconds`` is ``None`` when there is no honest upper bound: ``no_doctor_online``, or
    ``beyond_horizon`` (``low_seconds`` is then still a lower bound).
    """

    low_seconds: int
    high_seconds: int | None
    basis: Basis
    no_doctor_online: bool = False
    beyond_horizon: bool = False

    @property
    def known(self) -> bool:
        return self.high_seconds is not None

    @property
    def midpoint_seconds(self) -> float | None:
        if self.high_seconds is None:
            return None
        return (self.low_seconds + self.high_seconds) / 2

    @property
    def text(self) -> str:
        if self.no_doctor_online:
            return "no doctor online"
        if self.high_seconds is None:
            return f"more than {self.low_seconds // 60} min"
        return f"{self.low_seconds // 60}-{self.high_seconds // 60} min"


def _round_out(low_minutes: float, high_minutes: float) -> tuple[int, int]:
    low, high = math.floor(low_minutes), math.ceil(high_minutes)
    if low >= COARSE_FROM_MINUTES:
        low -= low % 5
    if high > COARSE_FROM_MINUTES:
        high += -high % 5
    return low, max(high, low + 1)


class _Queue:
    """One queue's doctors and durations, shared by the estimates of all its positions."""

    def __init__(
        self,
        needed_max: int,
        doctors_online: int,
        busy_elapsed: Sequence[float],
        model: DurationModel,
    ) -> None:
        busy = min(len(busy_elapsed), max(0, doctors_online))
        self.free = max(0, doctors_online) - busy
        self.doctors_online, self.busy, self.model = max(0, doctors_online), busy, model
        self._elapsed = sorted(busy_elapsed, reverse=True)[:busy] + [0.0] * self.free
        cap = max(1, needed_max + 1 - self.free)
        self.completions = Completions(model, self._elapsed, cap) if self.doctors_online else None

    def estimate(self, position: int) -> Estimate:
        if position < 0:
            raise ValueError("position must be >= 0")
        basis = Basis(
            position,
            self.doctors_online,
            self.busy,
            round(self.model.median_seconds),
            self.model.samples,
            self.model.from_history,
        )
        if self.completions is None:
            return Estimate(0, None, basis, no_doctor_online=True)
        needed = position + 1 - self.free
        if needed <= 0:
            return Estimate(0, 60, basis)
        horizon = HORIZON_SECONDS // 60
        servers = len(self._elapsed)
        typical = needed * self.model.mean / servers / 60
        spread = math.sqrt(needed * self.model.variance) / servers / 60
        first_low = self.completions.first_minute(
            needed, LOW_QUANTILE, guess=math.ceil(typical + probit(LOW_QUANTILE) * spread)
        )
        if first_low >= horizon and self.completions.served_by(needed, horizon) < LOW_QUANTILE:
            return Estimate(HORIZON_SECONDS, None, basis, beyond_horizon=True)
        first_high = self.completions.first_minute(
            needed, HIGH_QUANTILE, first_low, math.ceil(typical + probit(HIGH_QUANTILE) * spread)
        )
        low, high = _round_out(max(0, first_low - 1), first_high)
        if first_high >= horizon and self.completions.served_by(needed, horizon) < HIGH_QUANTILE:
            return Estimate(low * 60, None, basis, beyond_horizon=True)
        return Estimate(low * 60, high * 60, basis)


def estimate_wait(
    position: int,
    doctors_online: int,
    busy_elapsed: Sequence[float],
    model: DurationModel,
) -> Estimate:
    """The wait of a patient with ``position`` patients ahead of them.

    ``doctors_online`` counts the consultation places serving this queue now (a doctor taking
    three parallel chats counts three); ``busy_elapsed`` holds, for each place in use, how long
    its consultation has run, in seconds. ``model`` is ``RecentDurations.model(...)`` or
    ``DurationModel.fit(durations, form)``.
    """
    return _Queue(position, doctors_online, busy_elapsed, model).estimate(position)


def estimate_queue(
    waiting: int,
    doctors_online: int,
    busy_elapsed: Sequence[float],
    model: DurationModel,
) -> list[Estimate]:
    """``estimate_wait`` for positions ``0 .. waiting - 1`` of one queue, sharing the work."""
    queue = _Queue(waiting - 1, doctors_online, busy_elapsed, model)
    return [queue.estimate(k) for k in range(waiting)]


def wait_quantile(
    position: int,
    doctors_online: int,
    busy_elapsed: Sequence[float],
    model: DurationModel,
    quantile: float,
) -> int | None:
    """The first whole minute by which the patient is served with probability ``quantile``.

    A single figure of the same model, for reports and tests rather than patients; ``None``
    with no doctor online or beyond the horizon.
    """
    queue = _Queue(position, doctors_online, busy_elapsed, model)
    needed = position + 1 - queue.free
    if queue.completions is None:
        return None
    if needed <= 0:
        return 0
    minute = queue.completions.first_minute(needed, quantile)
    return None if minute >= HORIZON_SECONDS // 60 else minute
