"""The queues overview and this process's calls as Prometheus metrics, in the text exposition
format (version 0.0.4).

Hand-written rather than with prometheus_client: a handful of gauges (and the calls' running
counters) computed on each scrape from one overview and the media rooms need no registry,
collectors or extra dependency, and the format is a few
lines (``# HELP`` and ``# TYPE`` per metric, then ``name{label="value"} number``, label values
escaping backslash, double quote and newline).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from consult.media.stats import CallFigures
from consult.queue.dashboard_schemas import OverviewOut

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[dict[str, str], float]


# Every connectionState of aiortc's peers: each is shown, 0 when no leg is in it.
LEG_STATES = ("new", "connecting", "connected", "disconnected", "failed", "closed")


def render(overview: OverviewOut, calls: CallFigures | None = None) -> str:
    lines: list[str] = []

    def gauge(name: str, help_: str, samples: Iterator[Sample], type_: str = "gauge") -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {type_}")
        for labels, value in samples:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(
                f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}"
            )

    specialties = overview.specialties

    def per_form(field: str) -> Iterator[Sample]:
        for s in specialties:
            for f in s.forms:
                value = getattr(f, field)
                yield {"specialty": s.specialty.code, "form": str(f.form)}, float(value or 0)

    gauge(
        "consult_queue_waiting",
        "Patients queued (waiting, or offered to a doctor), per specialty and form.",
        per_form("waiting"),
    )
    gauge(
        "consult_queue_longest_wait_seconds",
        "How long the longest-waiting queued patient has waited (0 when none).",
        per_form("longest_wait_seconds"),
    )
    gauge(
        "consult_queue_median_wait_seconds",
        "Median wait of the queued patients (0 when none).",
        per_form("median_wait_seconds"),
    )
    gauge(
        "consult_queue_breach",
        f"1 when the longest wait exceeds {overview.wait_breach_seconds} s.",
        per_form("breach"),
    )
    gauge(
        "consult_doctors",
        "Doctors present for a specialty, by state: free and busy (online), away.",
        (
            ({"specialty": s.specialty.code, "state": state}, float(count))
            for s in specialties
            for state, count in (
                ("free", s.doctors.online - s.doctors.busy),
                ("busy", s.doctors.busy),
                ("away", s.doctors.away),
            )
        ),
    )
    gauge(
        "consult_consultations_in_progress",
        "Active consultations, per specialty.",
        (({"specialty": s.specialty.code}, float(s.in_progress)) for s in specialties),
    )
    gauge(
        "consult_queue_wait_breach_threshold_seconds",
        "The wait above which a queue is in breach (CONSULT_WAIT_BREACH).",
        iter([({}, float(overview.wait_breach_seconds))]),
    )
    if calls is not None:
        _calls(gauge, calls)
    return "\n".join(lines) + "\n"


def _calls(metric: Callable[..., None], calls: CallFigures) -> None:
    """The media rooms of this process (each process reports its own calls)."""
    relayed = calls.relayed
    kinds = ("audio", "video")
    metric(
        "consult_calls_in_progress",
        "Calls (voice or video) with a media room in this process.",
        iter([({}, float(calls.calls))]),
    )
    metric(
        "consult_call_legs",
        "Participants' connections with this process's media rooms, by connection state.",
        (
            ({"state": state}, float(sum(leg.state == state for leg in calls.legs)))
            for state in LEG_STATES
        ),
    )
    metric(
        "consult_call_relayed_frames_total",
        "Frames (audio: packets of 20 ms) forwarded to participants since the process started.",
        (({"kind": kind}, float(relayed.frames.get(kind, 0))) for kind in kinds),
        "counter",
    )
    metric(
        "consult_call_relayed_packets_total",
        "RTP packets sent to participants since the process started.",
        (({"kind": kind}, float(relayed.packets.get(kind, 0))) for kind in kinds),
        "counter",
    )
    metric(
        "consult_call_keyframe_requests_total",
        "Keyframe requests (PLI) sent to participants' video senders since the process started.",
        iter([({}, float(relayed.keyframe_requests))]),
        "counter",
    )
    metric(
        "consult_call_leg_rtt_seconds",
        "Round-trip time of each connected leg, from the participant's receiver reports.",
        (
            ({"consultation": leg.consultation_id, "user": leg.user_id}, leg.rtt_seconds)
            for leg in calls.legs
            if leg.rtt_seconds is not None
        ),
    )
    metric(
        "consult_call_leg_loss_ratio",
        "Fraction of packets lost over the leg's life, per kind and direction "
        "(in: participant -> server, out: server -> participant).",
        (
            (
                {
                    "consultation": leg.consultation_id,
                    "user": leg.user_id,
                    "kind": kind,
                    "direction": direction,
                },
                loss,
            )
            for leg in calls.legs
            for (kind, direction), loss in sorted(leg.loss.items())
        ),
    )
    metric(
        "consult_call_recordings_in_progress",
        "Call recordings being written by this process.",
        iter([({}, float(calls.recordings))]),
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
