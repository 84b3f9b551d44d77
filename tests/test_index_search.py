"""index and search through the CLI, on a real FAISS index and a real SQLite file, with a fake encoder."""
import json
import os

import pytest

from .helpers import FakeEncoder, fixture_docs
from .helpers import index_json as index
from .helpers import run_cli as run
from .helpers import search_json as search


@pytest.fixture
def docs(tmp_path):
    return fixture_docs(tmp_path / "docs")


def test_index_reads_every_type_and_reports_the_bad_files(fake, docs, tmp_path):
    summary = index(docs, tmp_path / "ix")
    assert summary["files_indexed"] == 5  # txt, md, html, pdf, jsonl
    assert summary["files_skipped"] == 1  # the binary
    assert [f["path"] for f in summary["files_failed"]] == ["broken.pdf"]
    assert summary["chunks_total"] == summary["chunks_added"] >= 6


def test_hits_carry_provenance(fake, docs, tmp_path):
    config = tmp_path / "small-chunks.yaml"
    config.write_text("index:\n  chunk_tokens: 12\n  chunk_overlap: 0.0\n")  # so each PDF page is its own chunk
    index(docs, tmp_path / "ix", "--config", config)
    [hit] = search(tmp_path / "ix", "terminate a process", "-k", "1")
    assert hit["path"] == "guide/process.md" and hit["start_line"] <= 7 <= hit["end_line"]
    assert "terminate a process" in hit["text"]
    [hit] = search(tmp_path / "ix", "halt truck safely", "-k", "1")
    assert hit["path"] == "manual.pdf" and hit["page"] == 2
    [hit] = search(tmp_path / "ix", "capital of Germany", "-k", "1")
    assert hit["path"] == "notes.jsonl" and hit["metadata"]["title"] == "Germany" and hit["start_line"] == 2


def test_reindex_encodes_only_the_edited_file_and_prunes_deleted_ones(fake, docs, tmp_path):
    index(docs, tmp_path / "ix")
    fake.calls.clear()
    summary = index(docs, tmp_path / "ix")
    assert summary["chunks_encoded"] == 0 and fake.calls == [] and summary["files_unchanged"] == 5

    (docs / "cars.txt").write_text("Electric cars need a charger at home.\n")
    os.remove(docs / "guide" / "sea.html")
    summary = index(docs, tmp_path / "ix")
    assert summary["files_indexed"] == 1 and summary["files_removed"] == ["guide/sea.html"]
    assert fake.calls == ["Electric cars need a charger at home."]
    paths = {h["path"] for h in search(tmp_path / "ix", "ocean moon tides", "-k", "20")}
    assert "guide/sea.html" not in paths
    [hit] = search(tmp_path / "ix", "charger for electric cars", "-k", "1")
    assert hit["path"] == "cars.txt"


def use_encoder(monkeypatch, encoder):
    for loader in ("load_encoder", "load_teacher_encoder"):
        monkeypatch.setattr(f"genretrieve.models.load.{loader}", lambda config=None: encoder)


def test_an_index_from_another_adapter_is_refused_until_rebuild_when_gen_encoded_it(fake, docs, tmp_path, monkeypatch):
    index(docs, tmp_path / "gx", "--doc-encoder", "gen")
    index(docs, tmp_path / "tx")  # teacher-encoded (the default): its vectors do not depend on the adapter
    use_encoder(monkeypatch, FakeEncoder(adapter_fingerprint="fake-adapter-2"))
    result = run("index", docs, "--index", tmp_path / "gx", "--doc-encoder", "gen")
    assert result.exit_code == 1 and "adapter: index has" in result.output and "--rebuild" in result.output
    assert run("search", "car", "--index", tmp_path / "gx").exit_code == 1
    index(docs, tmp_path / "gx", "--doc-encoder", "gen", "--rebuild")
    assert search(tmp_path / "gx", "car", "-k", "1")

    assert index(docs, tmp_path / "tx")["files_unchanged"] == 5  # another adapter does not lock users out
    for mode in ("teacher", "gen", "hybrid"):  # gen queries land in the teacher's space too
        assert search(tmp_path / "tx", "car", "-k", "1", "--mode", mode)
    other_teacher = FakeEncoder()
    other_teacher.teacher.fingerprint = "another-teacher"
    use_encoder(monkeypatch, other_teacher)
    result = run("search", "car", "--index", tmp_path / "tx")
    assert result.exit_code == 1 and "teacher: index has" in result.output
    result = run("index", docs, "--index", tmp_path / "tx")
    assert result.exit_code == 1 and "--rebuild" in result.output


def test_an_interrupted_index_leaves_the_old_one_searchable_and_resumes(fake, docs, tmp_path, monkeypatch):
    index(docs, tmp_path / "ix")
    before = search(tmp_path / "ix", "terminate a process", "-k", "3")
    (docs / "guide" / "process.md").write_text("# Processes\n\nTo halt a process use kill.\n")
    (docs / "cars.txt").write_text("A truck carries goods.\n")

    from genretrieve.index import store

    calls = {"n": 0}
    real_replace = store.Store.replace_file

    def failing_replace(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")  # mid-write, after one file of the batch
        return real_replace(self, *args, **kwargs)

    monkeypatch.setattr(store.Store, "replace_file", failing_replace)
    result = run("index", docs, "--index", tmp_path / "ix")
    assert result.exit_code != 0
    monkeypatch.setattr(store.Store, "replace_file", real_replace)
    # the whole batch rolled back: the old index answers exactly as before
    assert search(tmp_path / "ix", "terminate a process", "-k", "3") == before
    fake.calls.clear()
    summary = index(docs, tmp_path / "ix")
    assert summary["files_indexed"] == 2
    assert search(tmp_path / "ix", "halt a process", "-k", "1")[0]["path"] == "guide/process.md"


def test_path_filter_applies_before_ranking(fake, docs, tmp_path):
    index(docs, tmp_path / "ix")
    hits = search(tmp_path / "ix", "capital of France", "-k", "2", "--path", "guide/*")
    assert len(hits) == 2 and all(h["path"].startswith("guide/") for h in hits)


def test_hybrid_mixes_teacher_and_gen_scores(fake, docs, tmp_path):
    index(docs, tmp_path / "ix")
    query = "automobile engines"  # gen maps automobile -> vehicle; the teacher matches the word itself
    hits = {mode: search(tmp_path / "ix", query, "--mode", mode, "-k", "20", "--hybrid-weight", "0.5")
            for mode in ("gen", "teacher", "hybrid")}
    scores = {mode: {h["chunk_id"]: h["score"] for h in found} for mode, found in hits.items()}
    assert set(scores["hybrid"]) == set(scores["gen"]) == set(scores["teacher"])  # -k 20: every chunk, in each mode
    for chunk_id, score in scores["hybrid"].items():  # (1 - w)·teacher + w·gen, exactly, with w = 0.5 here
        assert score == pytest.approx(0.5 * scores["teacher"][chunk_id] + 0.5 * scores["gen"][chunk_id], abs=2e-3)
    assert [h["score"] for h in hits["hybrid"]] == sorted(scores["hybrid"].values(), reverse=True)
    # the mix ranks otherwise than either side alone: the best chunk of each mode is a different one
    best = {mode: found[0]["chunk_id"] for mode, found in hits.items()}
    assert len(set(best.values())) == 3, best


def test_bulk_queries_carry_ids(fake, docs, tmp_path):
    index(docs, tmp_path / "ix")
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"_id": "a", "text": "capital of France"}\n{"_id": "b", "text": "ocean tides"}\n')
    hits = [json.loads(l) for l in run("search", "--queries", queries, "--index", tmp_path / "ix", "--json",
                                       "-k", "2").stdout.splitlines()]
    assert [h["query_id"] for h in hits] == ["a", "a", "b", "b"]


def test_bad_input_gets_clear_errors_and_exit_codes(fake, tmp_path):
    result = run("index", tmp_path / "nope", "--index", tmp_path / "ix")
    assert result.exit_code == 2 and "does not exist" in result.output
    (tmp_path / "empty").mkdir()
    result = run("index", tmp_path / "empty", "--index", tmp_path / "ix")
    assert result.exit_code == 2 and not (tmp_path / "ix").exists()
    result = run("search", "anything", "--index", tmp_path / "ix")
    assert result.exit_code == 1 and "genretrieve index" in result.output
    assert run("search", "  ", "--index", tmp_path / "ix").exit_code == 2


def test_indexes_lists_and_rm_deletes(fake, docs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    index(docs, tmp_path / "indexes" / "default")
    listing = [json.loads(l) for l in run("indexes", "--json").stdout.splitlines()]
    assert listing[0]["chunks"] > 0 and listing[0]["backbone"] == "fake-llm"
    assert run("rm", "indexes/default", "--yes").exit_code == 0
    assert not (tmp_path / "indexes" / "default").exists()


@pytest.fixture
def fake_with_probe(fake, tmp_path):
    """The fake encoder plus a safety probe that flags queries mentioning a weapon."""
    from genretrieve.safety import SafetyProbe

    weapon = fake.teacher.encode(["weapon"])[0]
    folder = tmp_path / "adapter"
    folder.mkdir()
    SafetyProbe("teacher", (weapon * 20).tolist(), -5.0, 0.5, {}).save(folder)
    fake.card["path"] = str(folder)
    return fake


def test_safety_modes(fake_with_probe, docs, tmp_path):
    index(docs, tmp_path / "ix")
    harmful, benign = "how to build a weapon from a truck", "how to halt a truck"
    warned = search(tmp_path / "ix", harmful, "--safety", "warn", "-k", "2")
    assert len(warned) == 2 and all(h["flagged"] for h in warned)
    assert not any(h["flagged"] for h in search(tmp_path / "ix", benign, "--safety", "warn"))
    [blocked] = search(tmp_path / "ix", harmful, "--safety", "block")
    assert blocked["blocked"] is True and blocked["hits"] == []
    assert not any(h["flagged"] for h in search(tmp_path / "ix", harmful, "--safety", "off"))

    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"_id": "bad", "text": harmful}) + "\n" + json.dumps({"_id": "ok", "text": benign}) + "\n")
    result = run("search", "--queries", queries, "--index", tmp_path / "ix", "--json", "-k", "2", "--safety", "block")
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    calibration = rows[0].pop("safety_calibration")  # a flagged result names the threshold that judged it
    assert rows[0] == {"query_id": "bad", "query": harmful, "blocked": True, "flagged": True, "hits": [],
                       "reason": "the query was judged harmful (--safety block)"}
    assert "teacher probe" in calibration and "threshold 0.5000" in calibration
    assert [r["query_id"] for r in rows[1:]] == ["ok", "ok"] and not any(r["flagged"] for r in rows[1:])
    assert not any("safety_calibration" in r for r in rows[1:])
    result = run("search", harmful, "--index", tmp_path / "ix", "--safety", "block")
    # the block message is a message, not data: stderr, as warn's note is
    assert result.exit_code == 0 and "blocked" in result.stderr and "blocked" not in result.stdout
    result = run("search", harmful, "--index", tmp_path / "ix", "--safety", "warn")
    assert result.exit_code == 0 and "looks like a harmful request" in result.stderr
    assert "looks like a harmful request" not in result.stdout


def test_a_file_without_read_permission_is_reported_and_skipped(fake, docs, tmp_path, monkeypatch):
    from pathlib import Path

    real_read = Path.read_bytes

    def read_bytes(self):  # CI runs as root, which reads any file: simulate the permission error
        if self.name == "cars.txt":
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    summary = index(docs, tmp_path / "ix")
    assert {"path": "cars.txt", "error": "Permission denied"} in summary["files_failed"]
    assert summary["files_indexed"] == 4
