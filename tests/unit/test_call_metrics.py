"""The calls' part of /metrics: counters typed as counters, every leg state present (zeros
included, so series do not vanish), per-leg figures only for the legs that have them."""

from __future__ import annotations

from consult.http import metrics
from consult.media.stats import CallFigures, LegFigures, RelayTotals
from tests.metrics_reader import parse_metrics, sample, types
from tests.unit.test_dashboard import overview


def test_calls_are_rendered_with_their_types_and_labels() -> None:
    calls = CallFigures(
        calls=1,
        recordings=1,
        legs=[
            LegFigures("7", "2", "connected", 0.012, {("video", "in"): 0.25}),
            LegFigures("7", "5", "connecting", None, {}),
        ],
        relayed=RelayTotals(frames={"video": 300}, packets={"audio": 150}, keyframe_requests=3),
    )
    text = metrics.Metrics().render(overview(), calls).decode()
    kinds = types(text)
    assert kinds["consult_call_relayed_frames"] == "counter"
    assert kinds["consult_call_relayed_packets"] == "counter"
    assert kinds["consult_call_keyframe_requests"] == "counter"
    assert kinds["consult_calls_in_progress"] == "gauge"
    samples = parse_metrics(text)
    assert samples[sample("consult_calls_in_progress")] == 1
    assert samples[sample("consult_call_legs", state="connected")] == 1
    assert samples[sample("consult_call_legs", state="connecting")] == 1
    assert samples[sample("consult_call_legs", state="failed")] == 0
    assert samples[sample("consult_call_relayed_frames_total", kind="video")] == 300
    assert samples[sample("consult_call_relayed_frames_total", kind="audio")] == 0
    assert samples[sample("consult_call_relayed_packets_total", kind="audio")] == 150
    assert samples[sample("consult_call_keyframe_requests_total")] == 3
    assert samples[sample("consult_call_leg_rtt_seconds", consultation="7", user="2")] == 0.012
    assert sample("consult_call_leg_rtt_seconds", consultation="7", user="5") not in samples
    loss = sample(
        "consult_call_leg_loss_ratio", consultation="7", user="2", kind="video", direction="in"
    )
    assert samples[loss] == 0.25
    assert samples[sample("consult_call_recordings_in_progress")] == 1


def test_without_calls_only_the_queues_and_the_process_are_shown() -> None:
    samples = parse_metrics(metrics.Metrics().render(overview()).decode())
    assert not any(name.startswith("consult_call") for name, _ in samples)
    assert samples[sample("consult_queue_wait_breach_threshold_seconds")] == 900
    assert samples[sample("process_resident_memory_bytes")] > 0


def test_apps_in_one_process_have_registries_of_their_own() -> None:
    """Two apps (as in the tests) each show the process's metrics once, without colliding."""
    first, second = metrics.Metrics(), metrics.Metrics()
    for one in (first, second):
        samples = parse_metrics(one.render(overview()).decode())  # duplicates would fail here
        assert sample("process_start_time_seconds") in samples
