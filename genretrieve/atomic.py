"""Atomic writes: a reader sees the old file (or folder) or the new one, never half of either.

Files are written to a temp name in the same folder (so the rename stays on one file system),
flushed to disk, then renamed over the target; on any error the temp file is deleted and the
target is untouched. Temp names are `.NAME.<random>.tmp`, which the index's list of its own
files matches (index/folder.py OWN_FILES).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: mkstemp's 0600 would make a shared index or adapter unreadable to others


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temp path beside `path` for any writer (FAISS, numpy, ...); renamed over `path` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_UMASK)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:  # the data must be on disk before the rename makes it the file
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def replace_folder(staging: Path, target: Path) -> None:
    """Swap a complete `staging` folder in for `target`; the old folder is deleted only once the new one is in place."""
    staging, target = Path(staging), Path(target)
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
