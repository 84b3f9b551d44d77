"""One query-file reader for search, train and the safety commands: every format, and bad files as usage errors."""
import json

import pytest

from genretrieve.errors import UsageError
from genretrieve.query_file import read_query_file

from .helpers import fixture_docs
from .helpers import index_json as index
from .helpers import run_cli as run

FILES = {  # the same two queries in every format the commands accept
    "q.txt": "capital of France\n\n  ocean tides  \n",
    "q.jsonl": '{"_id": "a", "text": "capital of France"}\n\n{"query": "ocean tides", "lang": "en"}\n',
    "q.csv": "_id,query,lang\na,capital of France,en\n,ocean tides,en\n",
}


@pytest.mark.parametrize("name", FILES)
def test_every_format_reads_the_same_queries(tmp_path, name):
    (tmp_path / name).write_text(FILES[name])
    queries = read_query_file(tmp_path / name)
    assert [q["text"] for q in queries] == ["capital of France", "ocean tides"]
    assert [q.get("id") for q in queries] == ([None, None] if name == "q.txt" else ["a", None])


def test_bad_query_files_are_usage_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("\n \n")
    (tmp_path / "bad.jsonl").write_text('{"q": 1}\n')
    for name in ("empty.txt", "bad.jsonl", "missing.txt"):
        with pytest.raises(UsageError):
            read_query_file(tmp_path / name)
    (tmp_path / "ok.csv").write_text("query,id\nwhat is a cat,1\n")
    assert read_query_file(tmp_path / "ok.csv") == [{"text": "what is a cat"}]


@pytest.mark.parametrize("name, content, words", [
    ("broken.jsonl", '{"text": "fine"}\n{"text": \n', ["broken.jsonl:2", "not JSON"]),
    ("number.jsonl", '{"text": 42}\n', ["number.jsonl:1", "'text'"]),
    ("list.jsonl", '["a question"]\n', ["list.jsonl:1", "'text'"]),
    ("nocolumn.csv", "question,answer\nwhy,because\n", ["'text' or 'query' column", "question, answer"]),
    ("latin1.txt", "caf\xe9 au lait\n", ["UTF-8"]),
    ("empty.jsonl", "\n\n", ["holds no queries", ".csv"]),
])
def test_each_bad_file_names_what_is_wrong(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content.encode("latin-1") if name == "latin1.txt" else content.encode())
    with pytest.raises(UsageError) as caught:
        read_query_file(path)
    assert all(w in str(caught.value) for w in words), str(caught.value)


@pytest.mark.parametrize("name", FILES)
def test_bulk_search_reads_every_format(fake, tmp_path, name):
    index(fixture_docs(tmp_path / "docs"), tmp_path / "ix")
    (tmp_path / name).write_text(FILES[name])
    result = run("search", "--queries", tmp_path / name, "--index", tmp_path / "ix", "--json", "-k", "1")
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert [h["query"] for h in hits] == ["capital of France", "ocean tides"]
    # the file's _id, else the query's number in the file
    assert [h["query_id"] for h in hits] == (["1", "2"] if name == "q.txt" else ["a", "2"])


@pytest.mark.parametrize("command, option, extra", [("search", "--queries", ["--index", "ix"]),
                                                   ("train", "--queries", ["--out", "out"]),
                                                   ("fit-safety", "--queries", []),
                                                   ("calibrate-safety", "--benign", ["--out", "out"])])
def test_a_bad_query_file_exits_2_before_any_model_loads(tmp_path, monkeypatch, command, option, extra):
    def no_models(config=None):
        raise AssertionError("the models were loaded before the query file was checked")

    monkeypatch.setattr("genretrieve.models.load.load_encoder", no_models)
    monkeypatch.setattr("genretrieve.models.load.load_teacher_encoder", no_models)
    (tmp_path / "bad.jsonl").write_text('{"question": "why?"}\n')
    result = run(command, option, tmp_path / "bad.jsonl", *[tmp_path / e if e in ("ix", "out") else e for e in extra])
    assert result.exit_code == 2, result.output
    assert "bad.jsonl:1" in result.output and "Traceback" not in result.output
