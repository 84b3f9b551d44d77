"""`bench speed --sections scale` on the fake encoder and tiny sizes: the report's shape and its honest parts
(recall against exact search, every block count built, the indexing processes really run), no timing targets."""
import io
import json

import numpy as np
import pytest
from rich.console import Console

from genretrieve.bench.speed import parse_sections, speed_tables
from genretrieve.bench.speed_scale import cached_embeddings, scale_section
from genretrieve.config import Config

from .helpers import WORDS, FakeEncoder


def texts(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    return list(dict.fromkeys(" ".join(rng.choice(WORDS, 12)) for _ in range(n * 2)))[:n]


@pytest.fixture(scope="module")
def report():
    return scale_section(FakeEncoder(), Config(), n=2000, n_queries=40, blocks=(1, 3), workers=(), texts=texts(2040))


def test_scale_kinds_against_exact_search(report):
    assert report["corpus"]["vectors"] == 2000 and report["corpus"]["queries"] == 40
    kinds = report["kinds"]
    assert set(kinds) == {"flat (in RAM)", "ivf (in RAM)", "ivf-sq8 (on disk)", "ivf-pq (on disk)",
                          "ivf-pq (on disk, codes only)"}
    assert kinds["ivf-pq (on disk)"]["recall_at_10"] > kinds["ivf-pq (on disk, codes only)"]["recall_at_10"]
    assert kinds["flat (in RAM)"]["recall_at_10"] >= 0.9  # < 1 only by ties: the fake's bag-of-words vectors tie often
    assert kinds["ivf-sq8 (on disk)"]["recall_at_10"] >= 0.5
    for name, row in kinds.items():
        assert 0 <= row["recall_at_10"] <= 1 and row["p50_ms"] > 0 and row["bytes"] > 0, name
        assert row["memory"].get("loaded_mib", 0) > 0 or "skipped" in row["memory"], name
    for kind in ("ivf-sq8 (on disk)", "ivf-pq (on disk)"):
        assert set(kinds[kind]["builds"]) == {"1", "3"} and kinds[kind]["builds"]["3"]["merge_s"] >= 0
    assert kinds["ivf-pq (on disk)"]["code_bytes"] < kinds["ivf-sq8 (on disk)"]["code_bytes"] == FakeEncoder.dim
    assert kinds["ivf-pq (on disk)"]["bytes"] < kinds["ivf-sq8 (on disk)"]["bytes"] < kinds["flat (in RAM)"]["bytes"]


@pytest.mark.slow  # two rounds of indexing processes, each importing torch: ~20 s
def test_scale_throughput_runs_one_and_two_processes(tmp_path, monkeypatch):
    from genretrieve.bench.speed_scale import throughput

    monkeypatch.setenv("GENRETRIEVE_ENCODER_FACTORY", "tests.scale_helpers:fake_encoder")  # the processes' encoder
    t = throughput(FakeEncoder(), Config(), tmp_path, 30, (1, 2), 1, None, lambda msg: None)
    assert set(t["workers"]) == {"1", "2"}
    for row in t["workers"].values():
        assert row["chunks"] == t["corpus"]["chunks"] == row["encoded"] and row["wall_s"] > row["indexing_s"] > 0
    assert t["workers"]["1"]["wall_speedup"] == 1.0


def test_scale_report_is_json_and_renders(report):
    json.dumps(report)
    console = Console(file=io.StringIO(), width=200)
    tables = speed_tables({"scale": report})
    assert len(tables) == 2  # kinds, builds (throughput: not run here)
    for table in tables:
        console.print(table)
    assert "ivf-sq8 (on disk)" in console.file.getvalue() and "merge_ondisk" in console.file.getvalue()
    assert parse_sections("scale") == ["scale"] and "scale" not in parse_sections(None)  # opt-in


def test_embeddings_are_cached():
    encoder = FakeEncoder()
    first, rate = cached_embeddings(encoder.teacher.encode, texts(50), "fp", lambda msg: None)
    calls = len(encoder.calls)
    again, cached_rate = cached_embeddings(encoder.teacher.encode, texts(50), "fp", lambda msg: None)
    assert rate > 0 and cached_rate is None and len(encoder.calls) == calls
    np.testing.assert_array_equal(first, again)
