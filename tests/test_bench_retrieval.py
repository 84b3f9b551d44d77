"""run_retrieval end to end on a tiny BEIR fixture: FakeEncoder for the dense systems, tiny models for the rest."""
import json

import numpy as np
import pytest

from genretrieve.bench.retrieval import retrieval_table, run_retrieval, write_report
from genretrieve.bench.systems import rrf, top_k
from genretrieve.errors import UsageError

from .helpers import FakeEncoder, tiny_encoder

DOCS = {"d-car": "automobile service history and receipts", "d-proc": "terminate a process with a signal",
        "d-sea": "the ocean tide and the moon", "d-bread": "bake bread with flour and yeast",
        "d-git": "commit your changes in git"}
# the queries use synonyms of the documents' words: FakeEncoder's gen side maps both to one concept,
# while its teacher side and BM25 only see the surface words
QUERIES = {"q-car": ("car", "d-car"), "q-proc": ("kill", "d-proc"), "q-sea": ("sea", "d-sea")}


@pytest.fixture()
def beir(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n"
                                                   for i, t in DOCS.items()))
    (tmp_path / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n"
                                                    for q, (t, _) in QUERIES.items()))
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t1\n" for q, (_, d) in QUERIES.items()))
    return tmp_path


def test_fake_encoder_systems_score_in_range_and_gen_is_perfect(beir, tmp_path):
    systems = ["bm25", "teacher", "gen_doc_teacher", "gen_doc_gen", "hybrid", "rrf_bm25_teacher"]
    report = run_retrieval(beir, FakeEncoder(), systems=systems, latency_queries=2)
    assert list(report["systems"]) == systems
    for row in report["systems"].values():
        assert all(0.0 <= row[m] <= 1.0 for m in ("ndcg@10", "recall@10", "recall@100", "mrr@10"))
        assert row["query_latency_ms"] >= 0
        assert row["recall@100"] == 1.0  # 5 documents: everything is within the top 100
    assert report["systems"]["gen_doc_gen"]["ndcg@10"] == pytest.approx(1.0)
    assert report["systems"]["teacher"]["ndcg@10"] < 1.0  # the fixture does tell the systems apart
    assert report["dataset"]["documents"] == 5 and report["dataset"]["queries"] == 3
    assert set(report["per_query"]["teacher"]) == set(QUERIES)
    # the hybrid weight moves between the two sides: w=1 is gen queries against teacher documents
    only_gen = run_retrieval(beir, FakeEncoder(), systems=["hybrid", "gen_doc_teacher"], hybrid_weight=1.0,
                             latency_queries=0)["systems"]
    assert only_gen["hybrid"]["ndcg@10"] == pytest.approx(only_gen["gen_doc_teacher"]["ndcg@10"])
    assert retrieval_table(report).row_count == len(systems)
    paths = write_report(report, tmp_path / "out")
    assert all(p.stat().st_size > 0 for p in paths)
    assert "| gen_doc_gen | 1.000 |" in (tmp_path / "out" / "report.md").read_text()


def test_hybrid_weight_sweep_in_one_run(beir):
    encoder = FakeEncoder()
    systems = ["teacher", "gen_doc_teacher", "hybrid@0", "hybrid@0.5", "hybrid@1.0"]
    rows = run_retrieval(beir, encoder, systems=systems, latency_queries=0)["systems"]
    assert list(rows) == systems
    assert rows["hybrid@0"]["ndcg@10"] == pytest.approx(rows["teacher"]["ndcg@10"])
    assert rows["hybrid@1.0"]["ndcg@10"] == pytest.approx(rows["gen_doc_teacher"]["ndcg@10"])
    assert rows["teacher"]["ndcg@10"] < rows["gen_doc_teacher"]["ndcg@10"]  # the ends differ, so the checks bite
    # the three weights share one encoding of the queries (teacher runs once more on its own)
    assert sum(call == "car" for call in encoder.calls) == 4
    for bad in ("hybrid@2", "hybrid@x", "teacher@0.5"):
        with pytest.raises(UsageError, match="unknown system"):
            run_retrieval(beir, encoder, systems=[bad])


def test_filtered_systems_block_flagged_queries(beir, tmp_path):
    from genretrieve.safety import SafetyProbe

    encoder = FakeEncoder()
    SafetyProbe("teacher", [0.0] * FakeEncoder.dim, 10.0, 0.5, {}).save(tmp_path)  # flags every query
    encoder.card = {**encoder.card, "path": str(tmp_path)}
    rows = run_retrieval(beir, encoder, systems=["teacher", "teacher+filter", "hybrid@0.5+filter"],
                         latency_queries=0)["systems"]
    assert rows["teacher"]["ndcg@10"] > 0 and rows["teacher+filter"]["ndcg@10"] == 0.0
    assert rows["teacher+filter"]["blocked"] == rows["hybrid@0.5+filter"]["blocked"] == 1.0
    SafetyProbe("teacher", [0.0] * FakeEncoder.dim, -10.0, 0.5, {}).save(tmp_path)  # flags nothing
    rows = run_retrieval(beir, encoder, systems=["teacher", "teacher+filter"], latency_queries=0)["systems"]
    assert rows["teacher+filter"]["ndcg@10"] == rows["teacher"]["ndcg@10"] and rows["teacher+filter"]["blocked"] == 0.0
    with pytest.raises(UsageError, match="safety probe"):
        run_retrieval(beir, FakeEncoder(), systems=["teacher+filter"], latency_queries=0)


def test_documents_are_encoded_once_per_space(beir):
    encoder = FakeEncoder()
    run_retrieval(beir, encoder, systems=["teacher", "gen_doc_teacher", "hybrid"], latency_queries=0)
    assert sum(call == DOCS["d-bread"] for call in encoder.calls) == 1


def test_hyde_and_backbone_mean_run_on_tiny_models(beir):
    report = run_retrieval(beir, tiny_encoder(), systems=["hyde", "backbone_mean", "gen_doc_gen"], latency_queries=1)
    for row in report["systems"].values():
        assert 0.0 <= row["ndcg@10"] <= 1.0 and row["recall@100"] == 1.0


def test_unknown_system_and_missing_encoder_are_usage_errors(beir):
    with pytest.raises(UsageError, match="unknown system"):
        run_retrieval(beir, FakeEncoder(), systems=["colbert"])
    with pytest.raises(UsageError, match="only bm25"):
        run_retrieval(beir, None, systems=["teacher"])
    assert run_retrieval(beir, None, systems=["bm25"], latency_queries=0)["systems"]["bm25"]["ndcg@10"] >= 0


def test_top_k_and_rrf():
    scores = np.array([[0.1, 0.9, 0.5], [0.3, 0.3, 0.2]])
    assert top_k(scores, 2) == [[1, 2], [0, 1]]  # ties go to the earlier document
    assert top_k(scores, 10) == [[1, 2, 0], [0, 1, 2]]
    fused = rrf([[["a", "b", "c"]], [["b", "c", "a"]]], k=2)
    assert fused == [["b", "a"]]  # b: 1/62 + 1/61 beats a: 1/61 + 1/63
