"""`bench serve`'s load generator against a served fake: every request counted, errors counted, latencies."""
import os

from genretrieve.bench.serve import load, memory_mib

from .serve_helpers import ServedFake, build_fixture_index, served


def test_load_counts_every_request_and_its_errors(tmp_path):
    index_dir = build_fixture_index(tmp_path, ServedFake())
    with served(index_dir, ServedFake()) as (url, service):
        queries = [f"buying a car {i}" for i in range(24)]
        report = load(url, queries, 4, {"k": 3, "mode": "teacher"})
        assert report["requests"] == 24 and report["errors"] == 0 and report["clients"] == 4
        assert report["p50_ms"] > 0 and report["requests_per_s"] > 0
        assert service.batcher.stats["requests"] == 24  # each one reached the models
        bad = load(url, queries[:6], 2, {"k": 0})
        assert bad["errors"] == 6 and bad["error_samples"] == [400, 400, 400] and "p50_ms" not in bad


def test_memory_of_a_running_process():
    memory = memory_mib(os.getpid())
    if os.path.exists("/proc/self/status"):
        assert 0 < memory["rss_mib"] <= memory["peak_rss_mib"]
