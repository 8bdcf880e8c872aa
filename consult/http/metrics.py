"""The queues overview as Prometheus gauges, in the text exposition format (version 0.0.4).

Hand-written rather than with prometheus_client: a handful of gauges computed on each scrape
from one overview need no registry, collectors or extra dependency, and the format is a few
lines (``# HELP`` and ``# TYPE`` per metric, then ``name{label="value"} number``, label values
escaping backslash, double quote and newline).
"""

from __future__ import annotations

from collections.abc import Iterator

from consult.queue.dashboard_schemas import OverviewOut

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[dict[str, str], float]


def render(overview: OverviewOut) -> str:
    lines: list[str] = []

    def gauge(name: str, help_: str, samples: Iterator[Sample]) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} gauge")
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
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
