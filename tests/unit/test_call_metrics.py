"""The calls' part of /metrics: counters typed as counters, every leg state present (zeros
included, so series do not vanish), per-leg figures only for the legs that have them."""

from __future__ import annotations

from consult.http import metrics
from consult.media.stats import CallFigures, LegFigures, RelayTotals
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
    lines = metrics.render(overview(), calls).splitlines()
    assert "# TYPE consult_call_relayed_frames_total counter" in lines
    assert "# TYPE consult_calls_in_progress gauge" in lines
    assert "consult_calls_in_progress 1" in lines
    assert 'consult_call_legs{state="connected"} 1' in lines
    assert 'consult_call_legs{state="connecting"} 1' in lines
    assert 'consult_call_legs{state="failed"} 0' in lines
    assert 'consult_call_relayed_frames_total{kind="video"} 300' in lines
    assert 'consult_call_relayed_frames_total{kind="audio"} 0' in lines
    assert 'consult_call_relayed_packets_total{kind="audio"} 150' in lines
    assert "consult_call_keyframe_requests_total 3" in lines
    assert 'consult_call_leg_rtt_seconds{consultation="7",user="2"} 0.012' in lines
    assert not any(
        line.startswith('consult_call_leg_rtt_seconds{consultation="7",user="5"}') for line in lines
    )
    assert (
        'consult_call_leg_loss_ratio{consultation="7",user="2",kind="video",direction="in"} 0.25'
        in lines
    )
    assert "consult_call_recordings_in_progress 1" in lines
