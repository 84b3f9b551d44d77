"""`bench speed` sections index, search and faiss, on the fake encoder and tiny sizes (no timing assertions)."""
import io
import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from genretrieve.bench.speed import parse_sections, run_sections, speed_tables
from genretrieve.cli import app
from genretrieve.config import Config
from genretrieve.errors import UsageError

from .helpers import FakeEncoder


@pytest.fixture(scope="module")
def report():
    # keyword + safety off: the cold CLI run goes through the console script without loading models
    return run_sections(FakeEncoder(), Config(), ["index", "search", "faiss"], n_chunks=40, n_queries=5,
                        faiss_n=300, faiss_queries=50, cold_runs=1, cold_args=("--mode", "keyword", "--safety", "off"))


def test_index_section(report):
    index = report["index"]
    assert 30 <= index["corpus"]["chunks"] <= 40 and index["corpus"]["files"] >= 2
    assert 0 < index["corpus"]["chunk_tokens_mean"] <= index["corpus"]["chunk_tokens_max"] <= 200
    for name in ("teacher", "gen"):
        row = index["encoders"][name]
        assert row["chunks"] == index["corpus"]["chunks"] and row["chunks_per_s"] > 0
        assert row["reindex_s"] > 0 and row["reindex_encoded"] == 0  # nothing changed, nothing re-encoded
        assert {"target_chunks_per_s", "pass", "reindex_target_s", "reindex_pass"} <= set(row)
    assert index["gen_vs_teacher_throughput"] > 0


def test_search_section(report):
    search = report["search"]
    assert {"gen", "teacher", "keyword", "hybrid"} <= set(search["modes"])
    for row in search["modes"].values():
        assert 0 < row["p50_ms"] <= row["p90_ms"] and isinstance(row["pass"], bool)
    assert search["modes"]["keyword"]["vs_keyword_p50"] == pytest.approx(1.0)
    cold = search["cold"]
    assert cold["runs"] == 1 and cold["median_s"] > 0 and cold["peak_rss_mib"] > 0
    assert search["process_peak_rss_mib"] > 0


def test_faiss_section(report):
    faiss = report["faiss"]
    assert faiss["corpus"]["vectors"] == 300 and faiss["corpus"]["dim"] == FakeEncoder.dim
    assert faiss["corpus"]["from_index_section"] == report["index"]["corpus"]["chunks"]
    assert sum(faiss["corpus"]["words_by_source"].values()) > 0 and faiss["queries"] == 50
    assert {"flat (cpu)", "ivf (cpu)", "hnsw (cpu)"} <= set(faiss["kinds"])
    for row in faiss["kinds"].values():
        assert row["build_s"] >= 0 and row["batch_qps"] > 0 and row["single_qps"] > 0
        assert 0 <= row["recall_at_10"] <= 1 and row["faiss_bytes"] > 0
    assert faiss["kinds"]["flat (cpu)"]["recall_at_10"] == 1.0
    assert faiss["gpu"] == "run" or faiss["gpu"].startswith("not run:")


def test_report_is_json_and_renders_one_table_per_section(report):
    json.dumps(report)
    console = Console(file=io.StringIO(), width=200)
    tables = speed_tables(report)
    assert len(tables) == 3
    for table in tables:
        console.print(table)
    text = console.file.getvalue()
    assert "chunks/s" in text and "hybrid" in text and "hnsw (cpu)" in text


def test_sections_option():
    assert parse_sections(None) == ["encode", "index", "search", "faiss", "generate"]
    assert parse_sections("faiss, index") == ["index", "faiss"]
    with pytest.raises(UsageError):
        parse_sections("index,gpu")
    result = CliRunner().invoke(app, ["bench", "speed", "--sections", "nope"])
    assert result.exit_code == 2 and "--sections" in result.output


def test_out_writes_the_report_files(report, tmp_path):
    from genretrieve.bench.speed import write_report

    paths = write_report(report, tmp_path)
    assert [p.name for p in paths] == ["report.md", "report.json", "latency.png"]
    assert "chunks/s" in (tmp_path / "report.md").read_text() and (tmp_path / "latency.png").stat().st_size > 0
