"""End to end on the real packaged defaults: SmolLM2-135M-Instruct and all-MiniLM-L6-v2."""
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_real_encoder_gives_unit_vectors_in_the_teachers_space(real_encoder):
    queries = real_encoder.encode_queries(["What is the capital of France?", "How do I kill a Python process?"])
    documents = real_encoder.encode_documents(["Paris is the capital and largest city of France."])
    assert queries.shape == (2, 384) and documents.shape == (1, 384)
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1, atol=1e-4)
    assert np.abs(queries[0] - queries[1]).max() > 1e-3


def test_teacher_matches_sentence_transformers_semantics(real_encoder):
    vectors = real_encoder.teacher.encode(["A man is eating food.", "A man is eating a piece of bread.",
                                           "The stock market fell sharply today."])
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > 0.6 and unrelated < 0.2, (similar, unrelated)


def test_explain_decodes_the_soft_prompts(real_encoder, monkeypatch):
    from genretrieve.models.decode import decodable, explain

    [item] = explain(real_encoder, ["What is the capital of France?"], max_new_tokens=8)
    assert item.decodable == decodable(real_encoder.card) and (item.decoded is None) != item.decodable
    monkeypatch.setitem(real_encoder.card, "decodable", True)  # the decoding path itself, on the real LM
    [item] = explain(real_encoder, ["What is the capital of France?"], max_new_tokens=8)
    assert item.decoded and len(item.lens) == 10


def test_cached_reload_is_fast_and_identical(real_encoder, genretrieve_home):
    from pathlib import Path

    from genretrieve import load_encoder

    assert any((Path(genretrieve_home) / "models").glob("*/model.safetensors"))
    start = time.perf_counter()
    again = load_encoder()
    assert time.perf_counter() - start < 60  # a re-conversion would take minutes on a busy CI machine
    assert again.backbone.fingerprint == real_encoder.backbone.fingerprint
    text = ["How do tides work?"]
    np.testing.assert_allclose(again.encode_queries(text), real_encoder.encode_queries(text), atol=1e-6)


def test_index_and_search_end_to_end_on_the_real_defaults(real_encoder, tmp_path):
    import json

    from typer.testing import CliRunner

    from genretrieve.cli import app

    from .helpers import fixture_docs

    docs = fixture_docs(tmp_path / "docs")
    runner = CliRunner()
    result = runner.invoke(app, ["index", str(docs), "--index", str(tmp_path / "ix"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files_indexed"] == 5
    for mode in ("teacher", "gen", "hybrid", "keyword"):
        result = runner.invoke(app, ["search", "What is the capital of Germany?", "--index", str(tmp_path / "ix"),
                                     "--mode", mode, "-k", "3", "--json"])
        assert result.exit_code == 0, result.output
        hits = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(hits) == 3
        if mode == "teacher":
            assert hits[0]["path"] == "notes.jsonl" and "Berlin" in hits[0]["text"]
