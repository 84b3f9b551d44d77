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


# rank of each query's relevant document (q-car, q-proc, q-sea) per system on this fixture
RANKS = {
    "gen_doc_gen": (1, 1, 1),  # gen maps query and document words to one concept
    "gen_doc_teacher": (1, 2, 1),  # gen's "sea" -> ocean is a word of d-sea; the other two tie, in corpus order
    "hybrid": (2, 2, 1),  # at w = 0.1 the teacher's one match (below) outweighs gen's tie
    "teacher": (2, 2, 3),  # no query word is in a document; "car" shares a hash bucket with d-proc
    "bm25": (5, 4, 3),  # no query term matches: bm25s returns the all-zero ties in reverse corpus order
    "rrf_bm25_teacher": (5, 3, 5),
}


def test_fake_encoder_systems_score_what_their_rankings_give_and_gen_is_perfect(beir, tmp_path):
    systems = ["bm25", "teacher", "gen_doc_teacher", "gen_doc_gen", "hybrid", "rrf_bm25_teacher"]
    report = run_retrieval(beir, FakeEncoder(), systems=systems, latency_queries=2)
    assert list(report["systems"]) == systems
    for name, row in report["systems"].items():
        ranks = RANKS[name]  # one relevant document per query: each metric follows from its rank
        assert row["ndcg@10"] == pytest.approx(np.mean([1 / np.log2(r + 1) for r in ranks])), name
        assert row["mrr@10"] == pytest.approx(np.mean([1 / r for r in ranks])), name
        assert row["recall@10"] == row["recall@100"] == 1.0  # every system ranks all 5 documents
        assert row["query_latency_ms"] > 0
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
    for bad in ("hybrid@2", "hybrid@x", "teacher@0.5", "search:teacher@0.5", "search:keyword"):
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
    from genretrieve import query_vectors
    from genretrieve.bench.beir import doc_text, load_beir
    from genretrieve.bench.metrics import ndcg_at_k
    from genretrieve.bench.systems import backbone_mean

    encoder = tiny_encoder()
    report = run_retrieval(beir, encoder, systems=["hyde", "backbone_mean", "gen_doc_gen"], latency_queries=1)
    data = load_beir(beir)
    doc_ids, qids = list(data.corpus), list(data.queries)
    docs, texts = [doc_text(data.corpus[d]) for d in doc_ids], [data.queries[q] for q in qids]
    # a left-padded batch encodes each text as it would alone
    np.testing.assert_allclose(backbone_mean(encoder, docs), np.vstack([backbone_mean(encoder, [d]) for d in docs]),
                               atol=1e-5)
    # each system's per-query nDCG@10 is that of ranking by its own vectors, computed here apart from the bench
    hyde = query_vectors.hyde(encoder, texts, query_vectors.hyde_answers(encoder.backbone, texts))
    expected = {"hyde": hyde @ encoder.teacher.encode(docs).T,
                "backbone_mean": backbone_mean(encoder, texts) @ backbone_mean(encoder, docs).T,
                "gen_doc_gen": encoder.encode_queries(texts) @ encoder.encode_documents(docs).T}
    for name, scores in expected.items():
        ranked = [[doc_ids[i] for i in np.argsort(-row, kind="stable")] for row in scores]
        per_query = {q: ndcg_at_k(r, data.qrels[q], 10) for q, r in zip(qids, ranked)}
        assert report["per_query"][name] == pytest.approx(per_query), name


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


def cache_answers(answers: dict[str, str], max_new_tokens: int | None = None, backbone_fp: str = "fake-llm-fp") -> None:
    """Put answers into the training response cache, as `train` would have left them (default settings)."""
    from genretrieve.config import TrainConfig
    from genretrieve.models.assets import home
    from genretrieve.train.responses import ResponseCache, response_key

    max_new_tokens = TrainConfig().max_new_tokens if max_new_tokens is None else max_new_tokens
    settings = {"max_new_tokens": max_new_tokens, "greedy": True, "chat_template": True}
    ResponseCache(home() / "responses.sqlite").put_many([
        {"key": response_key(backbone_fp, settings, q), "backbone": backbone_fp, "settings": json.dumps(settings),
         "query": q, "response": a} for q, a in answers.items()])


@pytest.fixture()
def own_home(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRETRIEVE_HOME", str(tmp_path / "home"))


def test_oracle_searches_the_backbones_cached_answers(beir, own_home):
    # answers that are the relevant document's text: the teacher embeds each exactly onto its document
    cache_answers({text: DOCS[doc] for text, doc in QUERIES.values()})
    systems = ["teacher", "gen_doc_teacher", "hybrid@0.5", "rrf_bm25_gen", "oracle", "bm25"]
    report = run_retrieval(beir, FakeEncoder(), systems=systems, latency_queries=1)
    rows = report["systems"]
    assert rows["oracle"]["ndcg@10"] == pytest.approx(1.0)
    assert rows["oracle"]["query_latency_ms"] is None  # a cache lookup is not a latency
    assert report["oracle"]["cached"] == 3 and report["oracle"]["generated"] == 0
    # each gen-based system against its twin: the same system with the oracle's vector in place of gen's
    assert rows["gen_doc_teacher"]["oracle_ndcg@10"] == pytest.approx(1.0)  # gen's twin is the oracle itself
    assert rows["hybrid@0.5"]["oracle_ndcg@10"] == pytest.approx(1.0)
    assert rows["hybrid@0.5"]["oracle_ndcg@10"] > rows["hybrid@0.5"]["ndcg@10"]  # so the share is below 100%
    for name in ("gen_doc_teacher", "hybrid@0.5", "rrf_bm25_gen"):
        assert rows[name]["of_oracle"] == pytest.approx(rows[name]["ndcg@10"] / rows[name]["oracle_ndcg@10"])
    assert all("of_oracle" not in rows[name] for name in ("teacher", "bm25", "oracle"))
    twin = rows["hybrid@0.5"]["oracle_vs_teacher"]  # the twin's own paired CI against the teacher
    assert twin["delta"] == pytest.approx(rows["hybrid@0.5"]["oracle_ndcg@10"] - rows["teacher"]["ndcg@10"])
    assert set(report["per_query_oracle_twin"]) == {"gen_doc_teacher", "hybrid@0.5", "rrf_bm25_gen"}
    # answers that point elsewhere (each query answered with another query's document) move the oracle
    names = list(QUERIES)
    cache_answers({QUERIES[q][0]: DOCS[QUERIES[names[(i + 1) % 3]][1]] for i, q in enumerate(names)})
    moved = run_retrieval(beir, FakeEncoder(), systems=["gen_doc_teacher", "oracle"], latency_queries=0)["systems"]
    assert moved["oracle"]["ndcg@10"] < 0.7
    assert moved["gen_doc_teacher"]["of_oracle"] == pytest.approx(
        moved["gen_doc_teacher"]["ndcg@10"] / moved["oracle"]["ndcg@10"])


def test_oracle_answers_are_generated_once_with_the_training_settings(beir, own_home):
    encoder = tiny_encoder()
    first = run_retrieval(beir, encoder, systems=["oracle"], latency_queries=0, oracle_tokens=4)
    assert first["oracle"]["generated"] == 3 and first["oracle"]["max_new_tokens"] == 4
    assert 0.0 <= first["systems"]["oracle"]["ndcg@10"] <= 1.0
    again = run_retrieval(beir, encoder, systems=["oracle"], latency_queries=0, oracle_tokens=4)
    assert again["oracle"]["cached"] == 3 and again["oracle"]["generated"] == 0
    assert again["per_query"]["oracle"] == first["per_query"]["oracle"]
    # other settings are other answers: they are not served from the cache
    assert run_retrieval(beir, encoder, systems=["oracle"], latency_queries=0, oracle_tokens=5)["oracle"]["generated"] == 3


def test_every_system_gets_a_paired_ci_against_the_teacher(beir):
    report = run_retrieval(beir, FakeEncoder(), systems=["teacher", "gen_doc_gen", "bm25"], latency_queries=0)
    rows, per_query = report["systems"], report["per_query"]
    assert rows["teacher"]["vs_teacher"]["delta"] == 0.0 and rows["teacher"]["vs_teacher"]["ci"] == [0.0, 0.0]
    gap = rows["gen_doc_gen"]["vs_teacher"]
    assert gap["delta"] == pytest.approx(rows["gen_doc_gen"]["ndcg@10"] - rows["teacher"]["ndcg@10"]) and gap["delta"] > 0
    assert gap["ci"][0] <= gap["delta"] <= gap["ci"][1] and gap["resamples"] == 2000
    assert report["settings"]["bootstrap"]["baseline"] == "teacher"
    table = retrieval_table(report)
    assert "nDCG@10 - teacher [95% CI]" in [c.header for c in table.columns]
    # without the teacher there is nothing to pair with, and no oracle means no share
    alone = run_retrieval(beir, FakeEncoder(), systems=["gen_doc_teacher"], latency_queries=0)["systems"]
    assert "vs_teacher" not in alone["gen_doc_teacher"] and "of_oracle" not in alone["gen_doc_teacher"]


def test_cli_prints_the_ci_and_the_share_of_the_oracle(beir, own_home, fake):
    from typer.testing import CliRunner

    from genretrieve.cli import app

    cache_answers({text: DOCS[doc] for text, doc in QUERIES.values()})
    runner = CliRunner()
    result = runner.invoke(app, ["bench", "retrieval", str(beir), "--systems", "teacher,gen_doc_teacher,oracle", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["systems"]["gen_doc_teacher"]["of_oracle"] == pytest.approx(report["systems"]["gen_doc_teacher"]["ndcg@10"])
    assert "ci" in report["systems"]["oracle"]["vs_teacher"]
    table = runner.invoke(app, ["bench", "retrieval", str(beir), "--systems", "teacher,gen_doc_teacher,oracle"])
    assert table.exit_code == 0 and "gen / oracle" in table.stdout


def test_cli_refuses_an_unknown_system_before_loading_models(beir, monkeypatch):
    from typer.testing import CliRunner

    from genretrieve.cli import app

    def no_models(config=None):
        raise AssertionError("models were loaded")

    monkeypatch.setattr("genretrieve.models.load.load_encoder", no_models)
    result = CliRunner().invoke(app, ["bench", "retrieval", str(beir), "--systems", "teacher,colbert"])
    assert result.exit_code == 2 and "unknown system" in result.output


def test_the_bench_hybrid_weight_comes_from_the_config(beir, own_home, fake, tmp_path):
    """One source for w: the config's search.hybrid_weight (as search uses), unless --hybrid-weight says otherwise."""
    from typer.testing import CliRunner

    from genretrieve.cli import app

    config = tmp_path / "w.yaml"
    config.write_text("search: {hybrid_weight: 0.3}\n")
    runner = CliRunner()
    for extra, expected in (([], 0.3), (["--hybrid-weight", "0.2"], 0.2)):
        result = runner.invoke(app, ["bench", "retrieval", str(beir), "--systems", "teacher,hybrid", "--json",
                                     "--config", str(config), *extra])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["settings"]["hybrid_weight"] == expected


def test_the_product_system_indexes_chunks_and_ranks_each_document_once(beir, tmp_path, monkeypatch):
    """search:MODE runs build_index + Searcher: chunks (two per document here), float16, FAISS."""
    import tempfile

    from genretrieve.bench.systems import Workspace
    from genretrieve.config import Config

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    config = Config()
    config.index.doc_encoder, config.index.chunk_tokens = "gen", 4
    report = run_retrieval(beir, FakeEncoder(), systems=["gen_doc_gen", "search:gen", "search:teacher"],
                           latency_queries=1, config=config)
    rows = report["systems"]
    assert rows["search:gen"]["ndcg@10"] == pytest.approx(1.0) == rows["gen_doc_gen"]["ndcg@10"]
    # the teacher side sees surface words only, which gen-encoded chunks hold as concepts: it finds less
    assert rows["search:teacher"]["ndcg@10"] < 0.9
    assert rows["search:gen"]["doc_space"] == "index" and rows["search:gen"]["query_latency_ms"] > 0
    assert {k: report["index"][k] for k in ("chunks", "files", "kind", "doc_encoder", "chunk_tokens", "storage")} == {
        "chunks": 10, "files": 5, "kind": "flat", "doc_encoder": "gen", "chunk_tokens": 4, "storage": "float16"}
    assert "index" in report["doc_encode_s"]
    assert list((tmp_path / "tmp").iterdir()) == []  # the temporary index is gone
    write_report(report, tmp_path / "out")
    assert "search:MODE: the corpus indexed as `genretrieve index` does" in (tmp_path / "out" / "report.md").read_text()
    workspace = Workspace(FakeEncoder(), list(DOCS.values()), config, k=3)
    try:  # a document's two chunks count once, and k is in documents
        ranked = workspace.rank("search:gen", [text for text, _ in QUERIES.values()])
        assert all(len(row) == len(set(row)) == 3 for row in ranked)
        assert [row[0] for row in ranked] == [list(DOCS).index(doc) for _, doc in QUERIES.values()]
    finally:
        workspace.close()
