"""The shipped query pool (genretrieve/data/queries.jsonl.gz): ~13 k benign queries + a Do-Not-Answer safety slice.

Each row: id, text, source, kind, and for the safety slice `safety` and `refusal`. Sources,
licences and the exclusion of AdvBench and the dev set are in queries.provenance.json; the
builder is tools/build_pool.py (`.venv/bin/python tools/build_pool.py`).
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
POOL = DATA / "queries.jsonl.gz"


def load_pool(path: Path = POOL) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]
