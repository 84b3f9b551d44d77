"""One writer per index folder: a non-blocking `fcntl.flock` on `DIR/.lock`.

Two `genretrieve index` runs on one index would both encode everything and both report the
chunks as added; the second instead stops at once with a message naming the folder. flock locks
are released by the kernel when the process dies (kill -9 included), so a stale lock file never
blocks anyone; the file itself is left in place. Readers take no lock: SQLite gives them a
consistent view and the search path notices new generations (search.py).
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import GenretrieveError

LOCK = ".lock"


@contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """Hold the writer lock of `folder` (created if missing); GenretrieveError at once if another run holds it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise GenretrieveError(f"cannot write to the index at {folder}: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise GenretrieveError(f"another `genretrieve index` run holds {folder}"
                                   f"{f' (pid {holder})' if holder else ''}; wait for it to finish, then run again")
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)  # only to name the holder in the message above
        yield
    finally:
        os.close(fd)  # closing releases the lock


def is_locked(folder: Path) -> bool:
    """True while a writer holds `folder`'s lock (checked without taking it for long)."""
    path = Path(folder) / LOCK
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
