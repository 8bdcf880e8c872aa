"""Consultation durations for the wait estimate: a lognormal fitted from recent history.

Durations ``D`` are lognormal, fitted robustly from the recent window of finished consultations
of that specialty and form: the median, and the shape ``s = ln(q75 / q25) / 1.349`` from the
quartiles. With fewer than ``MIN_SAMPLES`` durations a documented prior is used
(``PRIOR_MEDIAN_SECONDS``: chat 12 min, voice and video 15 min; ``s = 0.5``).

The fitted median is itself uncertain: ``DurationModel.uncertainty`` is the standard error of
its logarithm (``sd = 1.25 s / sqrt(samples)``, or ``PRIOR_UNCERTAINTY`` on the prior), which
``completions.py`` averages over.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

PRIOR_MEDIAN_SECONDS: dict[str, float] = {"chat": 12 * 60.0, "voice": 15 * 60.0, "video": 15 * 60.0}
"""Typical consultation length per form, used until a specialty has its own history."""
PRIOR_SPREAD = 0.5
"""Lognormal shape of the prior (q75/q25 ~ 2: a 15 min median has quartiles of 11 and 21 min)."""
PRIOR_UNCERTAINTY = 0.35
"""How far (as a log factor) a prior median may be off for a given specialty."""
MIN_SAMPLES = 5
WINDOW = 200


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
