"""SQLite's WAL checkpoints, on a thread of their own.

A checkpoint copies the WAL's pages into the database file and fsyncs it: milliseconds to
seconds of disk work. SQLite's default runs one inside the commit that takes the WAL past 1,000
pages, holding the write lock meanwhile: every unit of work would wait for it (group_commit.py),
and a reader's statement on the loop's thread could meet it. The app's connections therefore
turn the auto-checkpoint off (engine.py), and a :class:`Checkpointer` thread with a connection of
its own checkpoints instead:

- ``PASSIVE`` every ``interval`` seconds, and as soon as the WAL file passes ``max_wal_bytes``
  (its size is looked at every :data:`POLL` seconds). PASSIVE never waits for and never blocks
  the loop's readers or writer: it copies what it can;
- ``TRUNCATE`` when the database is idle (nothing written since the last look, and the last
  PASSIVE copied every frame): the WAL file shrinks to 0 bytes. It needs the write lock for a
  moment; with a busy timeout of 0 it gives up at once if a writer holds it, and the loop's
  writers that meet its lock retry after an ``asyncio.sleep`` (inline_sqlite.py).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

from consult.storage.inline_sqlite import connect, is_busy
from consult.storage.outage import RepeatedFailures

log = logging.getLogger(__name__)

POLL = 0.2  # seconds between looks at the WAL file's size


class Checkpointer:
    def __init__(self, path: str, *, interval: float, max_wal_bytes: int) -> None:
        self._path = path
        self._wal = Path(path + "-wal")
        self._interval = interval
        self._max_wal_bytes = max_wal_bytes
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # What the thread has seen: seconds since the last PASSIVE, the WAL's size at the last
        # look, and whether the last PASSIVE copied every frame.
        self._since_checkpoint = 0.0
        self._last_size = -1
        self._all_copied = False
        # How many checkpoints of each mode completed (tests and logs).
        self.checkpoints = {"PASSIVE": 0, "TRUNCATE": 0}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (waits for a checkpoint in progress to finish)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        conn = connect(self._path)
        # A failing checkpoint (a disk error) is logged once and tried again at the next look:
        # a thread that stopped would leave the WAL to grow until the process restarts.
        failures = RepeatedFailures("SQLite checkpoint", log)
        try:
            while not self._stop.wait(POLL):
                try:
                    self._look(conn)
                except Exception as exc:
                    failures.failed(exc)
                else:
                    failures.succeeded()
        finally:
            conn.close()

    def _look(self, conn: sqlite3.Connection) -> None:
        self._since_checkpoint += POLL
        size = self._wal_size()
        if size == 0:
            self._last_size = 0
            return
        idle = size == self._last_size
        self._last_size = size
        if idle and self._all_copied:
            if self._checkpoint(conn, "TRUNCATE") is not None:
                self._last_size = self._wal_size()
                self._all_copied = False
        elif self._since_checkpoint >= self._interval or size > self._max_wal_bytes:
            self._since_checkpoint = 0.0
            copied = self._checkpoint(conn, "PASSIVE")
            self._all_copied = copied is not None and copied

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> bool | None:
        """Run one checkpoint: whether every WAL frame is now in the database file, or None
        when it could not complete (a lock held elsewhere)."""
        try:
            busy, frames, copied = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise  # a disk error: _run logs it
            log.debug("checkpoint %s not done: %s", mode, exc)
            return None
        if busy:
            return None
        self.checkpoints[mode] += 1
        return bool(frames == copied)

    def _wal_size(self) -> int:
        try:
            return os.stat(self._wal).st_size
        except FileNotFoundError:
            return 0
