"""query_vectors: each way a query becomes vectors, and that search and the benchmarks share them."""
import numpy as np
import pytest

from genretrieve import query_vectors
from genretrieve.bench.systems import Workspace
from genretrieve.config import Config

from .helpers import FakeEncoder, tiny_chat_encoder

QUERIES = ["how do i kill a python process ?", "what is the capital of france ?", "why is the sea water"]
DOCS = ["to kill a process send it a signal", "paris is the capital of france", "the sea is water and the moon",
        "the cat and the dog", "reset your account password on the page"]


@pytest.fixture(scope="module")
def encoder():
    return tiny_chat_encoder(seed=3)


def counting(encoder):
    """Wrap the encoder's three passes so a test can tell which ran."""
    calls = {"teacher": 0, "gen": 0, "states": 0}
    teacher, gen, both = encoder.teacher.encode, encoder.encode_queries, encoder.encode_queries_with_states

    def count(name, fn):
        def wrapped(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapped

    encoder.teacher.encode = count("teacher", teacher)
    encoder.encode_queries = count("gen", gen)
    encoder.encode_queries_with_states = count("states", both)
    return calls, lambda: [setattr(encoder.teacher, "encode", teacher), setattr(encoder, "encode_queries", gen),
                           setattr(encoder, "encode_queries_with_states", both)]


def test_encode_computes_each_missing_block_once(encoder):
    gen, states = encoder.encode_queries_with_states(QUERIES)
    teacher = encoder.teacher.encode(QUERIES)
    calls, restore = counting(encoder)
    try:
        values = query_vectors.encode(encoder, QUERIES, ["teacher", "gen", "states"])
        assert calls == {"teacher": 1, "gen": 0, "states": 1}  # gen came with the states, from one pass
        np.testing.assert_allclose(values["gen"], gen, atol=1e-6)
        np.testing.assert_allclose(values["states"], states, atol=1e-6)
        np.testing.assert_allclose(values["teacher"], teacher, atol=1e-6)
        have = {"teacher": teacher, "gen": None}  # None counts as missing
        again = query_vectors.encode(encoder, QUERIES, ["teacher", "gen"], have)
        assert again["teacher"] is teacher and calls == {"teacher": 1, "gen": 1, "states": 1}
        assert query_vectors.encode(encoder, QUERIES, []) == {} and calls["gen"] == 1
    finally:
        restore()


def test_gen_uses_the_configured_query_instruction(encoder):
    """The instruction search uses; another one (the safety bench's old one) gives other vectors."""
    gen = query_vectors.encode(encoder, QUERIES, ["gen"])["gen"]
    np.testing.assert_allclose(gen, encoder.encode_queries(QUERIES, instruction=encoder.query_instruction), atol=1e-6)
    other = encoder.encode_queries(QUERIES, instruction="Generate a relevant document that answers this query:")
    assert np.abs(gen - other).max() > 0.05


def test_mode_vector_is_the_block_or_the_hybrid_mix():
    rng = np.random.default_rng(0)
    blocks = {"teacher": rng.normal(size=(2, 4)).astype(np.float32), "gen": rng.normal(size=(2, 4)).astype(np.float32)}
    assert query_vectors.mode_vector(blocks, "teacher", 0.3) is blocks["teacher"]
    assert query_vectors.mode_vector(blocks, "gen", 0.3) is blocks["gen"]
    np.testing.assert_allclose(query_vectors.mode_vector(blocks, "hybrid", 0.3),
                               0.7 * blocks["teacher"] + 0.3 * blocks["gen"], rtol=1e-6)
    np.testing.assert_allclose(query_vectors.mode_vector(blocks, "hybrid", 0.0), blocks["teacher"])
    np.testing.assert_allclose(query_vectors.mode_vector(blocks, "hybrid", 1.0), blocks["gen"])
    assert query_vectors.MODE_BLOCKS["hybrid"] == ("teacher", "gen") and query_vectors.MODE_BLOCKS["keyword"] == ()


def test_hyde_and_oracle_are_teacher_embeddings_of_answers():
    encoder = FakeEncoder()
    answers = ["the ocean rises", "", "send a signal"]
    t_query, t_answer = encoder.teacher.encode(QUERIES), encoder.teacher.encode(answers)
    vectors = query_vectors.hyde(encoder, QUERIES, answers)
    np.testing.assert_allclose(vectors[0], query_vectors.unit(t_query[[0]] + t_answer[[0]])[0], atol=1e-6)
    np.testing.assert_allclose(vectors[1], t_query[1], atol=1e-6)  # an empty answer adds nothing
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert np.abs(vectors[0] - t_query[0]).max() > 0.1  # the answer moved the query
    np.testing.assert_allclose(query_vectors.oracle(encoder, answers[:1]), t_answer[:1], atol=1e-6)


def test_hyde_answers_are_the_backbones_greedy_chat_answers(encoder):
    from genretrieve.models.generate import generate_answers

    answers = query_vectors.hyde_answers(encoder.backbone, QUERIES[:2])
    assert answers == generate_answers(encoder.backbone, QUERIES[:2], query_vectors.HYDE["max_new_tokens"], chat=True)


@pytest.mark.parametrize("mode,system", [("teacher", "teacher"), ("gen", "gen_doc_teacher"), ("hybrid", "hybrid@0.4")])
def test_bench_and_search_score_every_document_alike(encoder, mode, system):
    """The bench's exact system and the product's index (one chunk per document here) give the same
    scores up to float16 storage: the query vectors are the same, so the two cannot drift apart."""
    config = Config()
    config.search.hybrid_weight = 0.4
    workspace = Workspace(encoder, DOCS, config)
    try:
        exact = workspace.dense(system, QUERIES)
        results = workspace.indexed().searcher.search(QUERIES, len(DOCS), mode, hybrid_weight=0.4)
        assert workspace.indexed().describe()["chunks"] == len(DOCS)
        for q, result in enumerate(results):
            scores = {int(hit.path.split(".")[0]): hit.score for hit in result.hits}
            assert sorted(scores) == list(range(len(DOCS)))
            for doc, score in scores.items():
                assert score == pytest.approx(exact[q, doc], abs=3e-3)
    finally:
        workspace.close()
    assert workspace._indexed is None


def test_the_safety_bench_encodes_gen_as_search_does(encoder, tmp_path):
    """Its gen system used another instruction than `search --mode gen`; now both call query_vectors."""
    from genretrieve.bench.safety import run_safety

    from .test_bench_safety import FakeWriter

    seen = []
    encode_queries = encoder.encode_queries

    def spy(texts, instruction=None):
        out = encode_queries(texts, instruction)
        seen.append((list(texts), instruction, out))
        return out

    encoder.encode_queries = spy
    try:
        writer = FakeWriter()
        queries = ["how to kill a cat", "how to poison the water"]
        run_safety(encoder, queries, systems=["teacher", "gen"], cache_dir=tmp_path, n_distractors=5, generate=writer,
                   writer=("fake", writer))
    finally:
        encoder.encode_queries = encode_queries
    runs = [(instruction, out) for texts, instruction, out in seen if texts == queries]
    assert runs and all(instruction is None for instruction, _ in runs)
    search_gen = query_vectors.encode(encoder, queries, query_vectors.MODE_BLOCKS["gen"])["gen"]
    np.testing.assert_allclose(runs[0][1], search_gen, atol=1e-6)
