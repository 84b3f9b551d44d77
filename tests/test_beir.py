"""BEIR loader: the standard layout, `limit`, clear errors on malformed files, and the shipped dev set."""
import json

import pytest

from genretrieve.bench.beir import doc_text, load_beir
from genretrieve.bench.retrieval import DEVSET
from genretrieve.errors import UsageError


def write_beir(root, corpus=None, queries=None, qrels=None):
    corpus = corpus if corpus is not None else [{"_id": "d1", "title": "Cars", "text": "car text"},
                                                {"_id": "d2", "title": "", "text": "sea text"},
                                                {"_id": "d3", "text": "moon text"}]
    queries = queries if queries is not None else [{"_id": "q1", "text": "a car?"}, {"_id": "q2", "text": "the sea?"},
                                                   {"_id": "q3", "text": "unjudged"}, {"_id": "q0", "text": "moon?"}]
    qrels = qrels if qrels is not None else "query-id\tcorpus-id\tscore\nq2\td2\t1\nq1\td1\t2\nq1\td3\t0\nq0\td3\t1\n"
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        (root / name).write_text("".join(r if isinstance(r, str) else json.dumps(r) + "\n" for r in rows))
    (root / "qrels" / "test.tsv").write_text(qrels)
    return root


def test_loads_the_standard_layout(tmp_path):
    data = load_beir(write_beir(tmp_path))
    assert set(data.corpus) == {"d1", "d2", "d3"}
    assert data.corpus["d3"] == {"title": "", "text": "moon text"}
    assert list(data.queries) == ["q2", "q1", "q0"]  # judged queries only, in qrels order
    assert data.qrels["q1"] == {"d1": 2, "d3": 0}
    assert doc_text(data.corpus["d1"]) == "Cars. car text" and doc_text(data.corpus["d2"]) == "sea text"


def test_limit_keeps_the_first_queries_and_the_whole_corpus(tmp_path):
    data = load_beir(write_beir(tmp_path), limit=2)
    assert list(data.queries) == ["q2", "q1"] and set(data.qrels) == {"q2", "q1"}
    assert len(data.corpus) == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"corpus": ['{"_id": "d1", "text": "ok"}\n', "{not json\n"]}, r"corpus.jsonl:2: not valid JSON"),
    ({"queries": [{"_id": "q1"}]}, r"queries.jsonl:1: missing field\(s\) text"),
    ({"qrels": "query-id\tcorpus-id\tscore\nq1\tnope\t1\n"}, r"test.tsv:2: unknown document id 'nope'"),
    ({"qrels": "query-id\tcorpus-id\tscore\nq1\td1\n"}, r"test.tsv:2: expected 3 tab-separated"),
    ({"qrels": "q1\td1\thigh\n"}, r"test.tsv:1: score 'high' is not an integer"),
])
def test_malformed_input_names_file_and_line(tmp_path, kwargs, message):
    with pytest.raises(UsageError, match=message):
        load_beir(write_beir(tmp_path, **kwargs))


def test_missing_file_is_a_usage_error(tmp_path):
    write_beir(tmp_path)
    (tmp_path / "queries.jsonl").unlink()
    with pytest.raises(UsageError, match="queries.jsonl: file not found"):
        load_beir(tmp_path)
    with pytest.raises(UsageError, match="not a folder"):
        load_beir(tmp_path / "nowhere")


def test_shipped_devset_is_valid_and_big_enough():
    data = load_beir(DEVSET)
    assert len(data.corpus) >= 500 and len(data.queries) >= 100
    assert all(max(j.values()) == 2 for j in data.qrels.values())  # every query has its own answer
