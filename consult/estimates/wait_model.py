"""Wait estimate for the walk-in queue: a range in whole minutes, never a false precision.

The model
---------
A patient with ``k`` patients ahead of them, facing ``n`` doctors online of whom ``b`` are
busy, is served when a doctor frees up and nobody is left ahead. The ``f = n - b`` free doctors
take the first ``f`` patients ahead at once (and from then on count as busy with a consultation
that has just begun), so the patient waits for the ``m = k + 1 - f``-th consultation to end
across the ``n`` doctors; ``m <= 0`` means no wait.

Durations ``D`` are lognormal, fitted robustly from the recent window of finished consultations
of that specialty and form: the median, and the shape ``s = ln(q75 / q25) / 1.349`` from the
quartiles. With fewer than ``MIN_SAMPLES`` durations a documented prior is used
(``PRIOR_MEDIAN_SECONDS``: chat 12 min, voice and video 15 min; ``s = 0.5``).

Doctor ``i``, whose current consultation has run ``e_i`` seconds, has ended at least ``l`` more
consultations by time ``t`` exactly when ``C_il = R_i + D_2 + ... + D_l <= t``. ``R_i`` is the
time left, ``D - e_i`` given ``D > e_i`` (the exact lognormal tail); for ``l >= 2`` the sum is
taken as the lognormal with the same mean and variance (Fenton-Wilkinson). Hence the count
``N_i(t)`` of consultations doctor ``i`` ends by ``t`` has ``P(N_i(t) >= l) = P(C_il <= t)``; the
doctors are independent, so ``N(t) = sum_i N_i(t)`` is a convolution, and

    P(wait <= t) = P(N(t) >= m).

No simulation: this is the distribution of the ``m``-th order statistic of the doctors' merged
completions, computed directly.

The uncertainty of the fitted median, which scales every duration at once (a log-normal
factor with ``sd = 1.25 s / sqrt(samples)``, or ``PRIOR_UNCERTAINTY`` on the prior), is averaged
over by three-point Gauss-Hermite quadrature.

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
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Basis",
    "DurationModel",
    "Estimate",
    "RecentDurations",
    "estimate_queue",
    "estimate_wait",
    "wait_quantile",
]

PRIOR_MEDIAN_SECONDS: dict[str, float] = {"chat": 12 * 60.0, "voice": 15 * 60.0, "video": 15 * 60.0}
"""Typical consultation length per form, used until a specialty has its own history."""
PRIOR_SPREAD = 0.5
"""Lognormal shape of the prior (q75/q25 ~ 2: a 15 min median has quartiles of 11 and 21 min)."""
PRIOR_UNCERTAINTY = 0.35
"""How far (as a log factor) a prior median may be off for a given specialty."""
MIN_SAMPLES = 5
WINDOW = 200
LOW_QUANTILE, HIGH_QUANTILE = 0.05, 0.80
"""A 75 % range set to the left: waits skew right, so its middle sits near the median."""
HORIZON_SECONDS = 8 * 3600
COARSE_FROM_MINUTES = 60

_EPS = 1e-6
_SQRT2 = math.sqrt(2.0)
_NORMAL = statistics.NormalDist()


def _phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / _SQRT2)


def _probit(p: float) -> float:
    """Its inverse, clipped to +-6."""
    return _NORMAL.inv_cdf(min(1 - 1e-9, max(1e-9, p)))


@dataclass(frozen=True)
class DurationModel:
    """Lognormal consultation durations: ``median_seconds`` and shape ``spread``."""

    median_seconds: float
    spread: float
    samples: int
    from_history: bool

    def __post_init__(self) -> None:
        if not (self.median_seconds > 0 and self.spread > 0 and self.samples >= 0):
            raise ValueError("a duration model needs a positive median and spread")
        if self.from_history and self.samples < 1:
            raise ValueError("a model from history needs at least one sample")

    @classmethod
    def fit(cls, durations: Sequence[float], form: str) -> DurationModel:
        """Robust fit from the window (median, quartiles); the form's prior with too few."""
        if len(durations) < MIN_SAMPLES:
            prior = PRIOR_MEDIAN_SECONDS.get(form, 15 * 60.0)
            return cls(prior, PRIOR_SPREAD, len(durations), from_history=False)
        values = [max(1.0, float(d)) for d in durations]
        q25, median, q75 = statistics.quantiles(values, n=4)
        spread = math.log(max(q75, median) / max(1.0, min(q25, median))) / 1.349
        return cls(median, min(1.5, max(0.15, spread)), len(values), from_history=True)

    @property
    def mean(self) -> float:
        return self.median_seconds * math.exp(self.spread**2 / 2)

    @property
    def variance(self) -> float:
        return self.mean**2 * math.expm1(self.spread**2)

    @property
    def uncertainty(self) -> float:
        """Standard error of ``ln(median)``: how far the whole scale may be off."""
        if not self.from_history:
            return PRIOR_UNCERTAINTY
        return math.sqrt(math.pi / 2) * self.spread / math.sqrt(self.samples)


class RecentDurations:
    """The last ``size`` consultation durations (seconds) per (specialty, form)."""

    def __init__(self, size: int = WINDOW) -> None:
        self._size = size
        self._windows: dict[tuple[str, str], deque[float]] = {}

    def add(self, specialty: str, form: str, seconds: float) -> None:
        window = self._windows.setdefault((specialty, form), deque(maxlen=self._size))
        window.append(max(0.0, float(seconds)))

    def get(self, specialty: str, form: str) -> tuple[float, ...]:
        return tuple(self._windows.get((specialty, form), ()))

    def model(self, specialty: str, form: str) -> DurationModel:
        return DurationModel.fit(self.get(specialty, form), form)


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


class _Completions:
    """``P(N(t) >= m)``: how many consultations the doctors end by ``t`` (module docstring)."""

    def __init__(self, model: DurationModel, elapsed: Sequence[float], cap: int) -> None:
        self._cap = cap
        self._mean, self._var = model.mean, model.variance
        self._mu, self._s = math.log(model.median_seconds), model.spread
        # An overrunning consultation is treated as one at the 99.5 % quantile.
        longest = model.median_seconds * math.exp(2.576 * self._s)
        self._doctors = [self._doctor(min(max(0.0, e), longest)) for e in elapsed]
        self._tails: dict[int, tuple[int, tuple[float, ...]]] = {}
        spread = math.sqrt(3) * model.uncertainty
        self._scales = ((math.exp(-spread), 1 / 6), (1.0, 2 / 3), (math.exp(spread), 1 / 6))

    def _survival(self, x: float) -> float:
        return 1.0 if x <= 0 else _phi((self._mu - math.log(x)) / self._s)

    def _doctor(self, elapsed: float) -> tuple[float, float, list[tuple[float, float]]]:
        """(elapsed, P(D > elapsed), lognormal (mu, sigma) of C_l for l = 2, 3, ...)."""
        mu, s = self._mu, self._s
        tail = self._survival(elapsed)
        z = (math.log(elapsed) - mu) / s if elapsed > 0 else -math.inf
        first = math.exp(mu + s * s / 2) * _phi(s - z) / tail
        second = math.exp(2 * mu + 2 * s * s) * _phi(2 * s - z) / tail
        rest_mean, rest_var = first - elapsed, max(0.0, second - first * first)
        sums = []
        for extra in range(1, self._cap):
            mean = rest_mean + extra * self._mean
            sigma2 = math.log1p((rest_var + extra * self._var) / (mean * mean))
            sums.append((math.log(mean) - sigma2 / 2, math.sqrt(sigma2)))
        return elapsed, tail, sums

    def _counts(
        self, doctor: tuple[float, float, list[tuple[float, float]]], t: float
    ) -> list[float]:
        """``[P(N_i >= 1), P(N_i >= 2), ...]`` until negligible, non-increasing."""
        elapsed, tail, sums = doctor
        first = 1.0 - self._survival(elapsed + t) / tail if t > 0 else 0.0
        probs = [min(1.0, max(0.0, first))]
        log_t = math.log(t) if t > 0 else -math.inf
        for mu, sigma in sums:
            if probs[-1] < _EPS:
                break
            probs.append(min(probs[-1], _phi((log_t - mu) / sigma)))
        return probs

    def _tail(self, seconds: int) -> tuple[int, tuple[float, ...]]:
        """``(offset, tails)``: ``P(N >= offset + j) = tails[j]``; below offset it is ~1."""
        if seconds not in self._tails:
            self._tails[seconds] = self._convolve(float(seconds))
        return self._tails[seconds]

    def _convolve(self, t: float) -> tuple[int, tuple[float, ...]]:
        offset, dist = 0, [1.0]
        for doctor in self._doctors:
            at_least = self._counts(doctor, t)  # at_least[j] = P(N_i >= j + 1)
            count, low = len(at_least), 0
            while low < count and at_least[low] >= 1.0 - _EPS:
                low += 1
            # P(N_i = low + j), everything below ``low`` lumped into it
            own = [1.0 - at_least[low]] if low < count else [1.0]
            own += [
                at_least[j] - (at_least[j + 1] if j + 1 < count else 0.0) for j in range(low, count)
            ]
            offset += low
            size = min(len(dist) + len(own) - 1, max(1, self._cap - offset + 1))
            if len(own) == 1:
                merged = dist[:size]
                merged[-1] += sum(dist[size:])
            else:
                merged = [0.0] * size  # the last cell holds everything >= cap
                for i, p in enumerate(dist):
                    if i + len(own) <= size:
                        for j, q in enumerate(own):
                            merged[i + j] += p * q
                    else:
                        for j, q in enumerate(own):
                            merged[min(i + j, size - 1)] += p * q
            start, end = 0, len(merged)
            while end - start > 1 and merged[start] < _EPS:  # trim negligible ends
                merged[start + 1] += merged[start]
                start += 1
            while end - start > 1 and merged[end - 1] < _EPS:
                merged[end - 2] += merged[end - 1]
                end -= 1
            offset, dist = offset + start, merged[start:end]
        tails, running = [0.0] * len(dist), 0.0
        for j in range(len(dist) - 1, -1, -1):
            running += dist[j]
            tails[j] = min(1.0, running)
        return offset, tuple(tails)

    def served_by(self, needed: int, minute: int) -> float:
        """``P(wait <= minute)`` for the patient waiting for the ``needed``-th ending.

        The duration scale is uncertain (``DurationModel.uncertainty``, a log-normal factor on
        every duration): the probability is averaged over it by three-point Gauss-Hermite.
        """
        total = 0.0
        for factor, weight in self._scales:
            offset, tails = self._tail(round(60 * minute / factor))
            j = needed - offset
            total += weight * (1.0 if j <= 0 else (tails[j] if j < len(tails) else 0.0))
        return total

    def first_minute(self, needed: int, quantile: float, low: int = 0, guess: int = 1) -> int:
        """The first whole minute from ``low`` by which ``P(wait <= minute) >= quantile``.

        The horizon if not before it. An exact search on whole minutes (so the answer is
        monotone in ``needed``), led by interpolation on the normal scale; ``guess`` only
        speeds it up.
        """
        horizon = HORIZON_SECONDS // 60
        below, p_below = low - 1, 0.0  # invariant: P(below) < quantile <= P(above)
        if below >= 0:
            p_below = self.served_by(needed, below)
        above, step = max(low, min(guess, horizon)), max(1, guess // 4)
        while (p_above := self.served_by(needed, above)) < quantile:
            if above >= horizon:
                return horizon
            below, p_below = above, p_above
            above, step = min(horizon, above + step), 2 * step
        target, bisect = _probit(quantile), False
        while above - below > 1:
            if bisect:
                probe = (below + above) // 2
            else:
                z_below, z_above = _probit(p_below), _probit(p_above)
                share = (target - z_below) / max(z_above - z_below, 1e-9)
                probe = min(above - 1, max(below + 1, round(below + share * (above - below))))
            width = above - below
            p_probe = self.served_by(needed, probe)
            if p_probe >= quantile:
                above, p_above = probe, p_probe
            else:
                below, p_below = probe, p_probe
            bisect = not bisect and 2 * (above - below) > width
        return above


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
        self.completions = _Completions(model, self._elapsed, cap) if self.doctors_online else None

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
            needed, LOW_QUANTILE, guess=math.ceil(typical + _probit(LOW_QUANTILE) * spread)
        )
        if first_low >= horizon and self.completions.served_by(needed, horizon) < LOW_QUANTILE:
            return Estimate(HORIZON_SECONDS, None, basis, beyond_horizon=True)
        first_high = self.completions.first_minute(
            needed, HIGH_QUANTILE, first_low, math.ceil(typical + _probit(HIGH_QUANTILE) * spread)
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
