"""Helpers for the scale-out tests: encoder factories Ray workers import by name, and index comparison.

Ray workers are separate processes, so a monkeypatched load_encoder does not reach them; they
build the fake encoder themselves from `tests.scale_helpers:fake_encoder`. The failure injection
keeps its state in a file (GENRETRIEVE_TEST_FAIL_DIR) because a retried batch may run in a
restarted worker process.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np

from .helpers import FakeEncoder, fixture_docs

FAIL_DIR = "GENRETRIEVE_TEST_FAIL_DIR"
FAIL_ON = "truck"  # texts of manual.pdf: the batch holding them fails


def fake_encoder(config=None):
    return FakeEncoder()


def _failing(times: int | None):
    """A FakeEncoder whose teacher raises on batches mentioning FAIL_ON: the first `times` attempts (None: always)."""
    encoder = FakeEncoder()
    real = encoder.teacher.encode

    def encode(texts):
        if any(FAIL_ON in t for t in texts):
            marker = Path(os.environ[FAIL_DIR])  # read here: only Ray workers, which encode, have it
            attempts = len(list(marker.glob("attempt-*")))
            (marker / f"attempt-{attempts + 1}-{os.getpid()}").touch()
            if times is None or attempts < times:
                raise RuntimeError("injected worker failure")
        return real(texts)

    encoder.teacher.encode = encode
    return encoder


def flaky_encoder(config=None):
    return _failing(times=1)


def broken_encoder(config=None):
    return _failing(times=None)


def more_docs(root):
    """fixture_docs plus nested folders and similar names, so ordering by path components matters."""
    root = fixture_docs(root)
    for rel, text in {"guide/a/deep.md": "# Deep\n\nThe sea is deep and the ocean is wide.\n",
                      "guide-b.txt": "A guide with a dash: stop the car, halt the truck.\n",
                      "guide/z.txt": "Zebras do not drive automobiles.\n",
                      "empty.txt": "",
                      "Upper.md": "# Upper\n\nCapital letters sort before small ones.\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def snapshot(index_dir) -> dict:
    """Everything that must match between two indexes of the same folder (not times or generation counters)."""
    db = sqlite3.connect(Path(index_dir) / "meta.sqlite")
    try:
        chunks = db.execute("SELECT id, path, chunk_hash, text, start_char, end_char, start_line, end_line, page, "
                            "heading, metadata FROM chunks ORDER BY id").fetchall()
        vectors = np.stack([np.frombuffer(v, np.float16) for (v,) in
                            db.execute("SELECT vector FROM chunks ORDER BY id")]).astype(np.float32)
        files = db.execute("SELECT path, sha256, size, n_chunks FROM files ORDER BY path").fetchall()
    finally:
        db.close()
    return {"chunks": chunks, "vectors": vectors, "files": files}


def assert_same_index(a, b):
    left, right = snapshot(a), snapshot(b)
    assert left["files"] == right["files"]
    assert left["chunks"] == right["chunks"]  # same ids, in the same order, for the same text and provenance
    np.testing.assert_allclose(left["vectors"], right["vectors"], atol=2e-3)  # float16 round-off


QUERIES = ["terminate a process", "automobile engines", "capital of France", "ocean tides", "halt the truck"]
