"""Composing finished recordings into the file participants download, after the call.

When a recording stops, its row says ``composing`` and the download answers 409
``recording_not_ready``; a process of its own (media/composition.py) decodes the recorder's
tracks and writes one picture and one sound; then the row says ``ready`` with the composed
file's size and SHA-256 (or ``failed``). One composition runs at a time per server process, at a
lower CPU priority, so calls in progress keep the cores; each is bounded in time
(``timeout_for``). At shutdown a composition in progress is stopped and its recording marked
``failed`` (its tracks stay on disk: docs/operations.md says how to compose them by hand).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import consult
from consult.calls import repository as repo
from consult.calls.recordings import RecordingStore
from consult.storage.uow import Database

log = logging.getLogger(__name__)

# Composing costs CPU time in proportion to the call's length (measured in docs/operations.md);
# the bound leaves room for a machine whose cores are shared.
MIN_TIMEOUT = 120.0
TIMEOUT_PER_SECOND = 4.0
# The length assumed when the recorder's own figure is lost (the room finished the file first).
LONGEST_CALL = 3 * 3600.0


def timeout_for(seconds: float) -> float:
    return MIN_TIMEOUT + TIMEOUT_PER_SECOND * seconds


class RecordingComposer:
    def __init__(self, db: Database, recordings: RecordingStore) -> None:
        self._db = db
        self._recordings = recordings
        self._one_at_a_time = asyncio.Semaphore(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
        self, recording_id: int, stored_name: str, order: Sequence[int], seconds: float
    ) -> None:
        """Compose in the background; ``order``: the user ids, shown left to right."""
        task = asyncio.create_task(
            self._compose(recording_id, stored_name, [str(u) for u in order], seconds),
            name=f"compose recording {recording_id}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Shutdown: stop compositions in progress (their recordings are marked failed)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _compose(
        self, recording_id: int, stored_name: str, order: list[str], seconds: float
    ) -> None:
        store = self._recordings
        temp = store.composing_path(stored_name)
        result: tuple[int, str] | None = None
        try:
            async with self._one_at_a_time:
                if await _run(store.tracks_path(stored_name), temp, order, timeout_for(seconds)):
                    await asyncio.to_thread(os.replace, temp, store.path(stored_name))
                    result = await store.checksum(stored_name)
        except Exception:
            log.exception("recording %s: composing failed", recording_id)
        finally:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(temp.unlink, missing_ok=True)
            # Also when cancelled at shutdown (close() waits for this): the row learns that
            # this recording failed.
            await self._finish(recording_id, stored_name, result)

    async def _finish(
        self, recording_id: int, stored_name: str, result: tuple[int, str] | None
    ) -> None:
        async with self._db.uow() as uow:
            await repo.composed(
                uow,
                recording_id,
                size=result[0] if result else None,
                sha256=result[1] if result else None,
            )
            await uow.commit()
        if result is None:
            log.error("recording %s: not composed; its tracks are kept", recording_id)
            return
        await self._recordings.remove_tracks(stored_name)
        log.info("recording %s composed (%s bytes)", recording_id, result[0])


async def _run(source: Path, target: Path, order: list[str], timeout: float) -> bool:
    """Run media/composition.py in a process of its own; whether it wrote ``target``."""
    env = dict(os.environ)
    # The child imports this very package, wherever the server was started from.
    root = str(Path(consult.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "consult.media.composition",
        str(source),
        str(target),
        *order,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        async with asyncio.timeout(timeout):
            _, errors = await process.communicate()
    except BaseException:  # the bound passed, or shutdown: the process must not outlive us
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        log.error(
            "composing %s exited with %s: %s",
            source.name,
            process.returncode,
            errors.decode(errors="replace")[-2000:],
        )
        return False
    return True
