"""Clinical files on disk are the server's alone: files 0600, their folders 0700.

Whatever the process's umask: documents, call recordings and the SQLite database (with its
``-wal`` and ``-shm`` files, which SQLite creates with the database file's mode) hold health
data, and another account on the machine must not read them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """Make the folder (and missing parents) if needed; a folder of ours that others may enter
    is closed to them (one made by an earlier version, under a lax umask)."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, DIR_MODE)


def private_file(path: Path) -> None:
    """Create the file empty if it is not there, and close an existing one to others (a
    database or recording written by an earlier version)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    _tighten(path, FILE_MODE)


def private_if_present(path: Path) -> None:
    """Close an existing file to others; nothing when it is not there."""
    with contextlib.suppress(FileNotFoundError):
        _tighten(path, FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    info = path.stat()
    if stat.S_IMODE(info.st_mode) & 0o077 == 0 or info.st_uid != os.geteuid():
        return  # already private, or not ours to change (then the operator's choice stands)
    if info.st_mode & stat.S_ISVTX:
        log.warning("%s is a shared (sticky) folder: give the server a folder of its own", path)
        return
    os.chmod(path, mode)
    log.info("closed %s to other users (mode %o)", path, mode)
