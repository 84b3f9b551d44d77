"""No data lost (issue 14): rm, roots, read-only and damaged indexes, concurrent writers, large files, skipped inputs.

Real SQLite, real FAISS, real flock; the fake encoder stands in for the models.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from .helpers import FakeEncoder, fixture_docs
from .helpers import index_json as index
from .helpers import run_cli as run
from .helpers import search_json as search


@pytest.fixture
def docs(tmp_path):
    return fixture_docs(tmp_path / "docs")


@pytest.fixture
def no_models(monkeypatch):
    """Cheap checks must come before the models load: loading them fails the command loudly."""
    def load(config=None):
        raise AssertionError("the models were loaded before a cheap check")
    monkeypatch.setattr("genretrieve.models.load.load_encoder", load)


def tree_digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- 1. rm deletes only what it can prove is an index, and only the index's own files -------------
def test_rm_refuses_a_folder_that_is_not_an_index(tmp_path):
    ext = tmp_path / "myext"
    (ext / "src").mkdir(parents=True)
    (ext / "manifest.json").write_text('{"name": "x", "manifest_version": 3}')
    (ext / "src" / "a.js").write_text("x")
    result = run("rm", ext, "--yes")
    assert result.exit_code == 1 and "not a genretrieve index" in result.output
    assert (ext / "src" / "a.js").exists() and (ext / "manifest.json").exists()


def test_index_refuses_an_index_folder_that_holds_other_files_or_is_a_file(no_models, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("my notes")
    result = run("index", notes, "--index", notes)
    assert result.exit_code == 2 and "holds other files" in result.output
    assert sorted(p.name for p in notes.iterdir()) == ["a.txt"]
    result = run("index", notes, "--index", notes / "a.txt")
    assert result.exit_code == 2 and "is a file" in result.output


def test_rm_deletes_only_the_index_files(fake, docs, tmp_path):
    index(docs, tmp_path / "ix")
    (tmp_path / "ix" / "mine.txt").write_text("a file the user put here")  # e.g. an index made before the check
    result = run("rm", tmp_path / "ix", "--yes")
    assert result.exit_code == 0 and "mine.txt" in result.output
    assert sorted(p.name for p in (tmp_path / "ix").iterdir()) == ["mine.txt"]
    index(docs, tmp_path / "ix2")
    assert run("rm", tmp_path / "ix2", "--yes").exit_code == 0 and not (tmp_path / "ix2").exists()


def test_rm_answered_no_deletes_nothing_and_says_so(fake, docs, tmp_path):
    index(docs, tmp_path / "ix")
    result = run("rm", tmp_path / "ix", input="n\n")
    assert result.exit_code == 0 and "nothing deleted" in result.output
    assert (tmp_path / "ix" / "manifest.json").exists()


# -- 2. indexing another path never silently prunes ------------------------------------------------
def test_indexing_another_path_into_an_index_is_refused_not_pruned(fake, docs, tmp_path):
    first = index(docs, tmp_path / "ix")
    result = run("index", docs / "cars.txt", "--index", tmp_path / "ix", "--json")
    assert result.exit_code == 2 and "--rebuild" in result.output and str(docs.resolve()) in result.output
    assert search(tmp_path / "ix", "capital of Germany", "-k", "1")[0]["path"] == "notes.jsonl"
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["roots"] == [str(docs.resolve())]
    # the same root, given another way, is the same index; --rebuild replaces the root
    os.remove(docs / "cars.txt")
    summary = index(Path(os.path.relpath(docs)), tmp_path / "ix")
    assert summary["files_removed"] == ["cars.txt"] and first["files_indexed"] == 5
    summary = index(docs / "guide", tmp_path / "ix", "--rebuild")
    assert summary["chunks_total"] == summary["chunks_added"]


# -- 3. search never writes ------------------------------------------------------------------------
def test_search_does_not_write_the_index(fake, docs, tmp_path):
    index(docs, tmp_path / "ix")
    before = tree_digest(tmp_path / "ix")
    search(tmp_path / "ix", "capital of France")
    search(tmp_path / "ix", "capital", "--mode", "keyword")
    assert tree_digest(tmp_path / "ix") == before


def test_a_read_only_index_can_be_searched(fake, docs, tmp_path):
    index(docs, tmp_path / "ix")
    subprocess.run(["chmod", "-R", "a-w", str(tmp_path / "ix")], check=True)
    try:
        if os.geteuid() != 0:
            assert search(tmp_path / "ix", "capital", "--mode", "keyword")
            return
        # root writes anywhere: search as an unprivileged user, who cannot
        os.chmod(tmp_path, 0o755)
        code = ("import sys; from genretrieve.cli import app; sys.argv = ['genretrieve'] + sys.argv[1:]; app()")
        try:
            done = subprocess.run([sys.executable, "-c", code, "search", "capital", "--mode", "keyword", "--json",
                                   "--index", str(tmp_path / "ix")], capture_output=True, text=True, user=65534,
                                  cwd=str(tmp_path), env={**os.environ, "GENRETRIEVE_HOME": str(tmp_path / "home")})
        except PermissionError:
            pytest.skip("the unprivileged user cannot run this checkout's Python")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[0])["path"] == "notes.jsonl"
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(tmp_path / "ix")], check=True)


# -- 4. a damaged index is named as such, listed, and removable ------------------------------------
@pytest.mark.parametrize("damage", ["truncated sqlite", "empty manifest", "invalid manifest"])
def test_a_damaged_index_says_so_and_can_be_removed(fake, docs, tmp_path, monkeypatch, damage):
    monkeypatch.chdir(tmp_path)
    ix = tmp_path / "indexes" / "broken"
    index(docs, ix)
    index(docs, tmp_path / "indexes" / "good")
    if damage == "truncated sqlite":
        db = ix / "meta.sqlite"
        os.truncate(db, db.stat().st_size // 2)
    else:
        (ix / "manifest.json").write_text("{}" if damage == "empty manifest" else "{not json")
    result = run("search", "car", "--index", ix)
    assert result.exit_code == 1 and "damaged" in result.output and "--rebuild" in result.output
    assert "Traceback" not in result.output
    listing = run("indexes", "--json")
    assert listing.exit_code == 0, listing.output
    rows = {Path(r["path"]).name: r for r in map(json.loads, listing.stdout.splitlines())}
    assert "damaged" in rows["broken"] and rows["good"]["chunks"] > 0
    assert run("indexes").exit_code == 0
    result = run("index", docs, "--index", ix)
    assert result.exit_code == 1 and "damaged" in result.output and "Traceback" not in result.output
    assert index(docs, ix, "--rebuild")["chunks_total"] > 0
    assert search(ix, "capital of Germany", "-k", "1")[0]["path"] == "notes.jsonl"
    if damage == "truncated sqlite":
        os.truncate(ix / "meta.sqlite", (ix / "meta.sqlite").stat().st_size // 2)
    else:
        (ix / "manifest.json").write_text("{}" if damage == "empty manifest" else "{not json")
    result = run("rm", ix, "--yes")
    assert result.exit_code == 0 and not ix.exists()


def test_rm_removes_a_sharded_index_with_its_shards(fake, docs, tmp_path):
    for i in range(2):
        index(docs, tmp_path / "ix", "--shard", f"{i}/2")
    assert run("merge", tmp_path / "ix").exit_code == 0
    assert search(tmp_path / "ix", "capital of Germany", "-k", "1")[0]["path"] == "notes.jsonl"
    result = run("rm", tmp_path / "ix", "--yes")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "ix").exists()


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_a_damaged_faiss_file_names_the_fix_and_search_never_rebuilds_it(fake, docs, tmp_path, monkeypatch, damage):
    ix = tmp_path / "ix"
    index(docs, ix)
    before = search(ix, "capital of Germany", "-k", "2")
    faiss_file = ix / "vectors.faiss"  # derived from the vectors in SQLite by the index run
    if damage == "truncated":
        os.truncate(faiss_file, faiss_file.stat().st_size // 2)
    else:
        faiss_file.unlink()
    damaged = tree_digest(ix)

    def refuse(config=None):
        raise AssertionError("the models were loaded before the FAISS file was checked")

    monkeypatch.setattr("genretrieve.models.load.load_teacher_encoder", refuse)
    result = run("search", "capital of Germany", "--index", ix)
    assert result.exit_code == 1 and "FAISS" in result.output and "Traceback" not in result.output
    assert f"`genretrieve index {docs.resolve()} --index {ix}`" in result.output  # re-derives, re-encodes nothing
    assert tree_digest(ix) == damaged  # the read path rebuilt and rewrote nothing
    assert search(ix, "capital", "--mode", "keyword")  # keyword search needs no FAISS file
    monkeypatch.setattr("genretrieve.models.load.load_teacher_encoder", lambda config=None: fake)
    assert index(docs, ix)["files_unchanged"] == 5
    assert search(ix, "capital of Germany", "-k", "2") == before


def test_search_after_a_cut_off_run_uses_the_last_faiss_file_and_says_so(fake, docs, tmp_path):
    from genretrieve.index.folder import IndexFolder

    ix = tmp_path / "ix"
    index(docs, ix)
    writer = IndexFolder(ix)  # a run that committed a file and was killed before deriving FAISS again
    writer.store.replace_file("late.txt", "sha", 1, 0.0, [{"chunk_hash": "x", "text": "capital of Germany is Berlin",
                                                          "vector": fake.teacher.encode(["capital of Germany"])[0]}])
    writer.close()
    result = run("search", "capital of Germany", "--index", ix, "--json", "-k", "3")
    assert result.exit_code == 0 and "cut off" in result.stderr and "index command again" in result.stderr
    assert all(json.loads(line)["path"] != "late.txt" for line in result.stdout.splitlines())
    assert search(ix, "Berlin", "--mode", "keyword")[0]["path"] == "late.txt"  # SQLite has it


# -- 7. a long-lived Searcher joins by id and notices new generations ------------------------------
def test_a_long_lived_searcher_sees_a_concurrent_reindex(docs, tmp_path):
    from genretrieve.config import Config
    from genretrieve.index.build import build_index
    from genretrieve.search import Searcher

    encoder, config = FakeEncoder(), Config()
    build_index(docs, tmp_path / "ix", encoder, config)
    searcher = Searcher(tmp_path / "ix", encoder, config)
    [first] = searcher.search(["capital of Germany"], k=1)
    assert first.hits[0].path == "notes.jsonl"
    os.remove(docs / "notes.jsonl")
    build_index(docs, tmp_path / "ix", encoder, config)  # another process, in real life
    [after] = searcher.search(["capital of Germany"], k=3)
    query = encoder.teacher.encode(["capital of Germany"])[0]
    store = searcher.folder.store
    for hit in after.hits:
        assert hit.path != "notes.jsonl"
        [vector] = store.vectors_of(np.array([hit.chunk_id]), encoder.dim).astype(np.float32)
        assert hit.score == pytest.approx(float(vector @ query), abs=2e-3)  # each hit carries its own score


@pytest.mark.parametrize("kind", ["flat", "ivf-sq8", "ivf-pq"])
def test_a_reader_during_an_index_run_never_fails_or_returns_deleted_chunks(docs, tmp_path, kind):
    from genretrieve.config import Config
    from genretrieve.index.build import build_index
    from genretrieve.index.folder import IndexFolder
    from genretrieve.search import Searcher

    encoder, config = FakeEncoder(), Config()
    config.index.kind = kind
    build_index(docs, tmp_path / "ix", encoder, config)
    searcher = Searcher(tmp_path / "ix", encoder, config)
    assert searcher.search(["capital of Germany"], k=1)[0].hits[0].path == "notes.jsonl"
    writer = IndexFolder(tmp_path / "ix")  # a run that committed a deletion but has not rewritten FAISS yet
    writer.store.remove_files(["notes.jsonl"])
    for mode in ("teacher", "gen"):
        [result] = searcher.search(["capital of Germany"], k=5, mode=mode)
        assert result.hits and all(h.path != "notes.jsonl" for h in result.hits)
        assert [h.rank for h in result.hits] == list(range(1, len(result.hits) + 1))
    writer.close()


# -- 8. writers are serialised ---------------------------------------------------------------------
def test_two_index_runs_do_not_both_do_the_work(docs, tmp_path):
    from genretrieve.config import Config
    from genretrieve.errors import GenretrieveError
    from genretrieve.index.build import build_index

    class Slow(FakeEncoder):
        def _embed(self, texts, concepts=True):
            time.sleep(0.3)
            return super()._embed(texts, concepts)

    encoders, outcomes = [Slow(), Slow()], [None, None]

    def work(i):
        try:
            outcomes[i] = build_index(docs, tmp_path / "ix", encoders[i], Config())
        except GenretrieveError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    won = [o for o in outcomes if not isinstance(o, Exception)]
    lost = [o for o in outcomes if isinstance(o, Exception)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert "another `genretrieve index` run holds" in str(lost[0])
    assert sum(bool(e.calls) for e in encoders) == 1  # the loser encoded nothing
    assert won[0].chunks_added == won[0].chunks_total


def test_index_while_another_run_holds_the_lock_exits_1(fake, docs, tmp_path):
    from genretrieve.index.lock import writer_lock

    index(docs, tmp_path / "ix")
    (docs / "cars.txt").write_text("changed")
    with writer_lock(tmp_path / "ix"):
        result = run("index", docs, "--index", tmp_path / "ix")
        assert result.exit_code == 1 and "another `genretrieve index` run holds" in result.output
        assert run("rm", tmp_path / "ix", "--yes").exit_code == 1
    assert index(docs, tmp_path / "ix")["files_indexed"] == 1


# -- 9. a large file: progress by chunks, commits inside it, a kill resumes inside it --------------
def test_a_large_file_commits_in_parts_and_resumes_inside_it(tmp_path, monkeypatch):
    from genretrieve.config import Config
    from genretrieve.index import build
    from genretrieve.index.build import build_index
    from genretrieve.index.folder import IndexFolder

    monkeypatch.setattr(build, "ENCODE_BATCH", 8)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "big.txt").write_text("\n".join(f"Line {i} says something about topic {i}." for i in range(400)))
    (docs / "small.txt").write_text("A small file.")
    config = Config()
    config.index.chunk_tokens, config.index.chunk_overlap = 20, 0.0

    class Killed(FakeEncoder):
        def _embed(self, texts, concepts=True):
            if len(self.calls) + len(texts) > 24:
                raise KeyboardInterrupt  # kill -9 inside the big file, after some commits
            return super()._embed(texts, concepts)

    progress = []
    with pytest.raises(KeyboardInterrupt):
        build_index(docs, tmp_path / "ix", Killed(), config, report=lambda *a: progress.append(a))
    assert [a for a in progress if a[1] not in (0, a[2])], "no progress inside the big file"
    store = IndexFolder(tmp_path / "ix").store
    kept = store.count_chunks()
    assert kept >= 16  # committed parts survived the kill
    store.close()

    encoder = FakeEncoder()
    summary = build_index(docs, tmp_path / "ix", encoder, config)
    fresh = build_index(docs, tmp_path / "fresh", FakeEncoder(), config)
    assert summary.chunks_total == fresh.chunks_total  # nothing duplicated
    assert len(encoder.calls) == fresh.chunks_total - kept  # nothing encoded twice
    rows = IndexFolder(tmp_path / "ix").store.db.query("SELECT text FROM chunks ORDER BY id")
    again = IndexFolder(tmp_path / "fresh").store.db.query("SELECT text FROM chunks ORDER BY id")
    assert [r["text"] for r in rows] == [r["text"] for r in again]
    assert build_index(docs, tmp_path / "ix", encoder, config).files_unchanged == 2


def test_editing_a_large_file_reencodes_only_what_changed(tmp_path, monkeypatch):
    from genretrieve.config import Config
    from genretrieve.index import build
    from genretrieve.index.build import build_index

    monkeypatch.setattr(build, "ENCODE_BATCH", 8)
    docs = tmp_path / "docs"
    docs.mkdir()
    lines = [f"Line {i} says something about topic {i}." for i in range(200)]
    (docs / "big.txt").write_text("\n".join(lines))
    config = Config()
    config.index.chunk_tokens, config.index.chunk_overlap = 20, 0.0
    first = build_index(docs, tmp_path / "ix", FakeEncoder(), config)
    (docs / "big.txt").write_text("\n".join(lines[:-1] + ["The last line is new."]))
    again = build_index(docs, tmp_path / "ix", FakeEncoder(), config)
    assert again.files_indexed == 1 and again.chunks_total == first.chunks_total
    assert again.chunks_encoded == 1  # the parts after the first reuse the old rows' vectors


def test_an_interrupted_large_file_is_not_taken_as_unchanged(tmp_path, monkeypatch):
    from genretrieve.config import Config
    from genretrieve.index import build
    from genretrieve.index.build import build_index

    monkeypatch.setattr(build, "ENCODE_BATCH", 4)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "big.txt").write_text("\n".join(f"Sentence number {i} here." for i in range(100)))
    config = Config()
    config.index.chunk_tokens, config.index.chunk_overlap = 10, 0.0

    class Killed(FakeEncoder):
        def _embed(self, texts, concepts=True):
            if self.calls:
                raise KeyboardInterrupt
            return super()._embed(texts, concepts)

    with pytest.raises(KeyboardInterrupt):
        build_index(docs, tmp_path / "ix", Killed(), config)
    summary = build_index(docs, tmp_path / "ix", FakeEncoder(), config)
    assert summary.files_indexed == 1 and summary.files_unchanged == 0


# -- 13. skipped inputs are named ------------------------------------------------------------------
def test_skipped_inputs_are_named(fake, docs, tmp_path, monkeypatch):
    (docs / "readme.markdown").write_text("# not a supported suffix\n")
    (docs / "wide.txt").write_bytes("UTF-16 without a BOM".encode("utf-16-le"))
    (docs / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    (docs / "locked").mkdir()
    (docs / "locked" / "secret.txt").write_text("secret")
    real_scandir = os.scandir

    def scandir(path="."):  # root reads any folder: simulate one without permission
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    summary = index(docs, tmp_path / "ix")
    skipped = {s["path"]: s["reason"] for s in summary["skipped"]}
    assert "unsupported" in skipped["readme.markdown"]
    assert "binary" in skipped["wide.txt"] and "binary" in skipped["blob.txt"]
    assert "symlink" in skipped["dangling.txt"]
    assert "Permission denied" in skipped["locked/"]
    assert summary["files_skipped"] == len(summary["skipped"]) == 5
    result = run("index", docs, "--index", tmp_path / "ix")
    assert "readme.markdown" in result.output


def test_a_path_filter_matching_nothing_says_so(fake, docs, tmp_path):
    index(docs, tmp_path / "ix")
    result = run("search", "car", "--index", tmp_path / "ix", "--path", "nothing/*")
    assert result.exit_code == 0 and "matches no indexed file" in result.output


# -- 14. one bad jsonl line does not reject the file -----------------------------------------------
def test_a_jsonl_file_with_bad_lines_indexes_the_good_records(fake, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.jsonl").write_text('{"text": "Paris is the capital of France."}\n{broken\n'
                                      '{"title": "no text"}\n{"text": "Berlin is the capital of Germany."}\n')
    summary = index(docs, tmp_path / "ix")
    assert summary["files_indexed"] == 1 and summary["files_failed"] == []
    assert [(b["path"], b["line"]) for b in summary["bad_records"]] == [("notes.jsonl", 2), ("notes.jsonl", 3)]
    assert search(tmp_path / "ix", "capital of Germany", "-k", "1")[0]["start_line"] == 4
    result = run("index", docs, "--index", tmp_path / "ix2")
    assert "notes.jsonl:2" in result.output
    (docs / "notes.jsonl").write_text("{broken\n")
    summary = index(docs, tmp_path / "ix3")  # nothing good in it: the file fails, named
    assert [f["path"] for f in summary["files_failed"]] == ["notes.jsonl"]
