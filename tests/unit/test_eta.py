"""The wait estimate: a range in whole minutes that moves the right way (no clock, no sleeps)."""

from __future__ import annotations

import heapq
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from consult.estimates.durations import PRIOR_MEDIAN_SECONDS, WINDOW, RecentDurations
from consult.estimates.wait_model import (
    HORIZON_SECONDS,
    DurationModel,
    Estimate,
    estimate_queue,
    estimate_wait,
    wait_quantile,
)

MIN = 60
HISTORY = DurationModel(15 * MIN, 0.5, 200, from_history=True)


def wait(position: int, doctors: int, busy: list[float] | None = None) -> Estimate:
    busy = [5 * MIN] * doctors if busy is None else busy
    return estimate_wait(position, doctors, busy, HISTORY)


def assert_honest(estimate: Estimate) -> None:
    assert estimate.low_seconds % MIN == 0
    if estimate.high_seconds is not None:
        assert estimate.high_seconds % MIN == 0
        assert estimate.low_seconds < estimate.high_seconds
        if estimate.high_seconds > 60 * MIN:
            assert estimate.high_seconds % (5 * MIN) == 0


# --- durations ---------------------------------------------------------------------------


def test_with_no_history_the_prior_of_the_form_is_used():
    chat, video = DurationModel.fit([], "chat"), DurationModel.fit([1.0] * 4, "video")
    assert chat.median_seconds == PRIOR_MEDIAN_SECONDS["chat"] == 12 * MIN
    assert video.median_seconds == PRIOR_MEDIAN_SECONDS["video"] == 15 * MIN
    assert not chat.from_history and not video.from_history


def test_the_fit_is_robust_to_an_outlier():
    durations = [10 * MIN, 11 * MIN, 12 * MIN, 13 * MIN, 14 * MIN] * 4 + [10 * 3600]
    model = DurationModel.fit(durations, "video")
    assert model.from_history and model.samples == 21
    assert model.median_seconds == 12 * MIN
    assert model.spread < 0.5


def test_the_prior_is_less_certain_than_a_long_history():
    prior = DurationModel(15 * MIN, 0.5, 0, from_history=False)
    assert prior.uncertainty > DurationModel(15 * MIN, 0.5, 10, True).uncertainty
    assert DurationModel(15 * MIN, 0.5, 10, True).uncertainty > HISTORY.uncertainty
    narrow, wide = estimate_wait(6, 2, [0, 0], HISTORY), estimate_wait(6, 2, [0, 0], prior)
    assert narrow.high_seconds is not None and wide.high_seconds is not None
    assert wide.high_seconds - wide.low_seconds > narrow.high_seconds - narrow.low_seconds


def test_recent_durations_keep_a_bounded_window_per_specialty_and_form():
    recent = RecentDurations()
    for i in range(WINDOW + 50):
        recent.add("cardiology", "video", float(i))
    recent.add("cardiology", "chat", 42.0)
    window = recent.get("cardiology", "video")
    assert len(window) == WINDOW and window[0] == 50.0 and window[-1] == WINDOW + 49
    assert recent.get("cardiology", "chat") == (42.0,)
    assert recent.get("dermatology", "video") == ()
    assert not recent.model("dermatology", "video").from_history


# --- the estimate ------------------------------------------------------------------------


def test_a_free_doctor_means_no_wait():
    estimate = estimate_wait(1, 3, [10 * MIN], HISTORY)  # two free doctors, one patient ahead
    assert (estimate.low_seconds, estimate.high_seconds) == (0, MIN)
    assert estimate.text == "0-1 min"


def test_more_patients_ahead_means_a_longer_wait():
    estimates = [wait(k, 2) for k in (0, 2, 5, 10)]
    for shorter, longer in zip(estimates, estimates[1:], strict=False):
        assert shorter.high_seconds is not None and longer.high_seconds is not None
        assert longer.low_seconds > shorter.low_seconds
        assert longer.high_seconds > shorter.high_seconds


def test_more_doctors_means_a_shorter_wait():
    estimates = [wait(8, n) for n in (1, 2, 4, 8)]
    for slower, faster in zip(estimates, estimates[1:], strict=False):
        assert slower.high_seconds is not None and faster.high_seconds is not None
        assert faster.high_seconds < slower.high_seconds
        assert faster.low_seconds <= slower.low_seconds


def test_a_consultation_nearly_over_shortens_the_wait_of_the_next_patient():
    just_started, nearly_over = wait(0, 1, [0.0]), wait(0, 1, [14 * MIN])
    assert just_started.high_seconds is not None and nearly_over.high_seconds is not None
    assert nearly_over.high_seconds < just_started.high_seconds


def test_the_range_is_in_whole_minutes_and_wider_for_longer_waits():
    short, long = wait(1, 3), wait(30, 3)
    assert_honest(short)
    assert_honest(long)
    assert short.high_seconds is not None and long.high_seconds is not None
    assert long.high_seconds - long.low_seconds > short.high_seconds - short.low_seconds


def test_no_doctor_online_is_flagged_without_an_upper_bound():
    estimate = estimate_wait(3, 0, [], HISTORY)
    assert estimate.no_doctor_online and not estimate.known
    assert estimate.high_seconds is None and estimate.midpoint_seconds is None
    assert estimate.text == "no doctor online"
    assert wait_quantile(3, 0, [], HISTORY, 0.5) is None


def test_a_wait_past_the_horizon_is_flagged_with_a_lower_bound_only():
    estimate = wait(200, 1)
    assert estimate.beyond_horizon and estimate.high_seconds is None
    assert estimate.low_seconds == HORIZON_SECONDS
    assert estimate.text == f"more than {HORIZON_SECONDS // MIN} min"


def test_the_basis_says_what_the_estimate_rests_on():
    estimate = estimate_wait(4, 3, [MIN, 2 * MIN], HISTORY)
    assert estimate.basis.position == 4
    assert (estimate.basis.doctors_online, estimate.basis.doctors_busy) == (3, 2)
    assert estimate.basis.median_duration_seconds == 15 * MIN
    assert estimate.basis.text == (
        "4 ahead, 3 doctors online (2 busy), median 15 min from 200 recent consultations"
    )


def test_a_whole_queue_at_once_matches_one_by_one():
    busy = [MIN, 7 * MIN, 20 * MIN]
    assert estimate_queue(12, 3, busy, HISTORY) == [
        estimate_wait(k, 3, busy, HISTORY) for k in range(12)
    ]


def test_the_range_holds_about_three_quarters_of_simulated_waits():
    """Check the model against a plain simulation of the same situation (seeded, no clock)."""
    rng = random.Random(7)
    busy, ahead, mu, s = [2 * MIN, 9 * MIN, 25 * MIN], 7, math.log(15 * MIN), 0.5
    estimate = estimate_wait(ahead, 3, busy, HISTORY)
    assert estimate.high_seconds is not None
    inside, runs = 0, 4000
    for _ in range(runs):
        free_at = []
        for elapsed in busy:  # the remaining time of a consultation that has run ``elapsed``
            duration = rng.lognormvariate(mu, s)
            while duration <= elapsed:
                duration = rng.lognormvariate(mu, s)
            free_at.append(duration - elapsed)
        heapq.heapify(free_at)
        for _ in range(ahead):
            heapq.heappush(free_at, heapq.heappop(free_at) + rng.lognormvariate(mu, s))
        inside += estimate.low_seconds <= free_at[0] <= estimate.high_seconds
    assert 0.70 <= inside / runs <= 0.90


def test_quantiles_grow_with_the_probability():
    minutes = [wait_quantile(5, 2, [MIN, MIN], HISTORY, q) for q in (0.1, 0.5, 0.9)]
    assert None not in minutes and minutes == sorted(minutes) and minutes[0] != minutes[2]


# --- properties --------------------------------------------------------------------------

elapsed_lists = st.lists(st.floats(0, 3 * 3600, allow_nan=False), max_size=5)
models = st.builds(
    lambda median, spread, samples: DurationModel(median, spread, samples, samples > 0),
    st.floats(2 * MIN, 40 * MIN),
    st.floats(0.15, 1.2),
    st.integers(0, 500),
)


@settings(max_examples=60, deadline=None)
@given(position=st.integers(0, 25), extra_free=st.integers(0, 2), busy=elapsed_lists, model=models)
def test_one_more_patient_ahead_never_shortens_the_range(position, extra_free, busy, model):
    doctors = len(busy) + extra_free
    before = estimate_wait(position, doctors, busy, model)
    after = estimate_wait(position + 1, doctors, busy, model)
    assert_honest(before)
    assert_honest(after)
    assert after.low_seconds >= before.low_seconds
    if before.high_seconds is None:
        assert after.high_seconds is None
    elif after.high_seconds is not None:
        assert after.high_seconds >= before.high_seconds


@settings(max_examples=60, deadline=None)
@given(
    position=st.integers(0, 25),
    busy=elapsed_lists,
    newcomer=st.one_of(st.none(), st.floats(0, 3 * 3600, allow_nan=False)),
    model=models,
)
def test_one_more_doctor_never_lengthens_the_range(position, busy, newcomer, model):
    """The new doctor is free (``None``) or busy with a consultation that has run a while."""
    more = busy if newcomer is None else [*busy, newcomer]
    before = estimate_wait(position, len(busy), busy, model)
    after = estimate_wait(position, len(busy) + 1, more, model)
    assert_honest(after)
    assert not after.no_doctor_online
    if before.no_doctor_online:
        return
    assert after.low_seconds <= before.low_seconds
    if after.high_seconds is None:
        assert before.high_seconds is None
    elif before.high_seconds is not None:
        assert after.high_seconds <= before.high_seconds
