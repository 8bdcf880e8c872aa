"""The bad-input log: one line per event, at most ``burst`` per address per window, and the
first line after a quiet spell says how many were left out."""

from __future__ import annotations

import logging

import pytest

from consult import logs


def test_lines_beyond_the_burst_are_left_out_and_counted_per_address(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: now[0])
    log = logs.BadInputLog(window=60, burst=2)
    caplog.set_level(logging.WARNING, logger="consult.bad_input")
    for _ in range(10):
        log.note("10.0.0.1", "malformed Socket.IO packet", "x" * 500)
    log.note("10.0.0.2", "malformed HTTP request")
    now[0] += 61
    log.note("10.0.0.1", "malformed Socket.IO packet")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert lines[0].startswith("bad input from 10.0.0.1: malformed Socket.IO packet (xxx")
    assert len(lines[0]) < 200  # the detail is shortened
    assert lines[2] == "bad input from 10.0.0.2: malformed HTTP request"
    assert lines[3] == (
        "bad input from 10.0.0.1: malformed Socket.IO packet; 8 more from this address left out"
    )
