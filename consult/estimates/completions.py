"""How many consultations the doctors end by a time ``t``, and so when the patient is served.

Doctor ``i``, whose current consultation has run ``e_i`` seconds, has ended at least ``l`` more
consultations by time ``t`` exactly when ``C_il = R_i + D_2 + ... + D_l <= t``. ``R_i`` is the
time left, ``D - e_i`` given ``D > e_i`` (the exact lognormal tail); for ``l >= 2`` the sum is
taken as the lognormal with the same mean and variance (Fenton-Wilkinson). Hence the count
``N_i(t)`` of consultations doctor ``i`` ends by ``t`` has ``P(N_i(t) >= l) = P(C_il <= t)``; the
doctors are independent, so ``N(t) = sum_i N_i(t)`` is a convolution, and

    P(wait <= t) = P(N(t) >= m)

for a patient waiting for the ``m``-th ending (``wait_model.py`` says which). No simulation:
this is the distribution of the ``m``-th order statistic of the doctors' merged completions,
computed directly.

The uncertainty of the fitted median, which scales every duration at once (a log-normal
factor, ``DurationModel.uncertainty``), is averaged over by three-point Gauss-Hermite
quadrature.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from consult.estimates.durations import DurationModel

HORIZON_SECONDS = 8 * 3600
"""No wait is searched beyond this: a longer one is flagged rather than estimated."""

_EPS = 1e-6
_SQRT2 = math.sqrt(2.0)
_NORMAL = statistics.NormalDist()


def phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / _SQRT2)


def probit(p: float) -> float:
    """Its inverse, clipped to +-6."""
    return _NORMAL.inv_cdf(min(1 - 1e-9, max(1e-9, p)))


class Completions:
    """``P(N(t) >= m)``: how many consultations the doctors end by ``t`` (the module docstring)."""

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
        return 1.0 if x <= 0 else phi((self._mu - math.log(x)) / self._s)

    def _doctor(self, elapsed: float) -> tuple[float, float, list[tuple[float, float]]]:
        """(elapsed, P(D > elapsed), lognormal (mu, sigma) of C_l for l = 2, 3, ...)."""
        mu, s = self._mu, self._s
        tail = self._survival(elapsed)
        z = (math.log(elapsed) - mu) / s if elapsed > 0 else -math.inf
        first = math.exp(mu + s * s / 2) * phi(s - z) / tail
        second = math.exp(2 * mu + 2 * s * s) * phi(2 * s - z) / tail
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
            probs.append(min(probs[-1], phi((log_t - mu) / sigma)))
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
        target, bisect = probit(quantile), False
        while above - below > 1:
            if bisect:
                probe = (below + above) // 2
            else:
                z_below, z_above = probit(p_below), probit(p_above)
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
