"""Interpreter settings for a long-running server process (``consult serve``; the benchmarks'
bare servers use the same, so that their ratios measure consult's own work)."""

from __future__ import annotations

import gc
import sys

# The database drivers' threads hand every result back to the event loop; with the default
# 5 ms interval a result waits that long whenever the loop is busy, which stretched each
# statement, and the SQLite writer's turn, under load
# (docs/decisions/2026-11-29-interpreter-tuning.md).
SWITCH_INTERVAL = 0.0005  # seconds

# Thousands of sockets and their sessions are long-lived objects: with the default thresholds
# the cyclic collector walked them all several times a second, pausing the event loop for the
# tail of every latency (the same record). The older generations are collected as rarely as
# that record chose; the young one is small, so that the cyclic garbage of every request
# (SQLAlchemy's statements) is freed in short pauses, not in one long one every few dozen
# requests (docs/decisions/2026-12-08-smaller-young-generation.md).
GC_THRESHOLDS = (5_000, 500, 100)


def tune() -> None:
    """Before building the application."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)


def started() -> None:
    """After building it: what start-up made lives as long as the process."""
    gc.freeze()
