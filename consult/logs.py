"""Logging set-up, and the one-line, rate-limited log of expected bad input.

Bad input from clients (a malformed Socket.IO or Engine.IO packet, an HTTP request that does not
parse) is expected on the internet and says nothing about the server: logged with a traceback
each, it would let a client write to the log at will. Such input is
logged as one WARNING line of ``consult.bad_input`` naming the client's address, at most
``BURST`` lines per address per ``WINDOW`` seconds; the first line after a quiet spell says how
many were left out. Errors of the server itself keep their tracebacks.
"""

from __future__ import annotations

import logging
import threading
import time
from contextvars import ContextVar

from aiohttp.http_exceptions import HttpProcessingError

from consult.errors import ConsultError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# python-socketio and python-engineio log through this logger (consult/signaling/server.py):
# given their own logger they add no handler of theirs, so nothing is printed twice.
TRANSPORT_LOGGER = "consult.transport"
WINDOW = 60.0  # seconds
BURST = 5  # lines per client address per window
_MAX_CLIENTS = 10_000  # addresses remembered; beyond it, the oldest windows are forgotten
_MAX_DETAIL = 120  # characters of an exception's text kept in a line

log = logging.getLogger("consult.bad_input")

# The client whose request is being handled, for records logged without its address (set by
# consult/signaling/strict.py around python-engineio's request handling).
CLIENT: ContextVar[str | None] = ContextVar("consult_client", default=None)


class BadInputLog:
    """Thread-safe (aiohttp's and the watchdog's records may come from other threads)."""

    def __init__(self, window: float = WINDOW, burst: int = BURST) -> None:
        self._window = window
        self._burst = burst
        # address -> [window start, lines logged in it, lines left out]
        self._clients: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def note(self, address: str | None, what: str, detail: str = "") -> None:
        """Log ``what`` (and ``detail``, shortened) for ``address``, unless that address has had
        its ``burst`` of lines in this window."""
        line = self.admit(address)
        if line is None:
            return
        if len(detail) > _MAX_DETAIL:
            detail = detail[:_MAX_DETAIL] + "…"
        detail = f" ({detail})" if detail else ""
        log.warning("bad input from %s: %s%s%s", address or "?", what, detail, line)

    def admit(self, address: str | None) -> str | None:
        """None: rate-limited. Otherwise what to append to the line (the count left out)."""
        key = address or "?"
        now = time.monotonic()
        with self._lock:
            state = self._clients.get(key)
            if state is None or now - state[0] >= self._window:
                left_out = int(state[2]) if state is not None else 0
                if state is None and len(self._clients) >= _MAX_CLIENTS:
                    self._forget(now)
                self._clients[key] = [now, 1, 0]
                return f"; {left_out} more from this address left out" if left_out else ""
            if state[1] < self._burst:
                state[1] += 1
                return ""
            state[2] += 1
            return None

    def clear(self) -> None:
        """Forget every client (tests)."""
        with self._lock:
            self._clients.clear()

    def _forget(self, now: float) -> None:
        expired = [k for k, (start, _, _) in self._clients.items() if now - start >= self._window]
        for key in expired or list(self._clients)[: _MAX_CLIENTS // 2]:
            del self._clients[key]


BAD_INPUT = BadInputLog()


def describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[: _MAX_DETAIL * 2]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _BadRequestLine(logging.Filter):
    """On ``aiohttp.server``: "Error handling request from <address>" with the traceback of a
    request that does not parse becomes one rate-limited bad-input line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        address = record.args[0] if isinstance(record.args, tuple) and record.args else None
        BAD_INPUT.note(str(address) if address else None, "malformed HTTP request", describe(exc))
        return False


# What reading a malformed packet raises; ConsultError: a body refused while it was read
# (consult/serving.py), already noted.
_READ_ERRORS = (ValueError, IndexError, KeyError, TypeError, RecursionError, ConsultError)


class _UntracedTransportError(logging.Filter):
    """On the Socket.IO transport's logger: what python-engineio still logs with a traceback
    for a packet it could not read (e.g. a malformed HTTP long-polling payload) becomes one
    rate-limited line. Malformed packets over WebSocket are refused before that
    (consult/signaling/strict.py), naming the client."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, _READ_ERRORS):
            return True
        what = f"Socket.IO transport: {record.getMessage()}"
        BAD_INPUT.note(CLIENT.get(), what, describe(exc))
        return False


def configure(level: str) -> None:
    """The server's logging: one format on stderr; the libraries' bad-input noise tamed."""
    logging.basicConfig(level=level, format=FORMAT)
    tame_libraries()


def tame_libraries() -> None:
    """Idempotent; also run by create_app, so that servers started by tests are tamed too."""
    for name, kind in (
        ("aiohttp.server", _BadRequestLine),
        (TRANSPORT_LOGGER, _UntracedTransportError),
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())
    # python-socketio logs every emit and received event at INFO: only warnings and worse.
    logging.getLogger(TRANSPORT_LOGGER).setLevel(logging.WARNING)
