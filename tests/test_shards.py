"""`index --shard I/N` + `merge`: the file contract of scale-out, through the CLI, with the fake encoder."""
import json
import shutil
import sys

import pytest
from typer.testing import CliRunner

from genretrieve.cli import app
from genretrieve.index.shards import parse_shard, shard_of

from .scale_helpers import QUERIES, assert_same_index, more_docs

runner = CliRunner()


@pytest.fixture
def docs(tmp_path):
    return more_docs(tmp_path / "docs")


@pytest.fixture
def small_chunks(tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text("index:\n  chunk_tokens: 8\n  chunk_overlap: 0.25\n")  # several chunks per file: order matters
    return config


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def ok(*args):
    result = run(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args and args[0] != "search" else result


def search(index_dir, query, *extra):
    return [json.loads(line) for line in ok("search", query, "--index", index_dir, "--json", "-k", "5",
                                            *extra).stdout.splitlines()]


def build_shards(docs, index_dir, count, config, only=None):
    for i in range(count) if only is None else only:
        ok("index", docs, "--index", index_dir, "--shard", f"{i}/{count}", "--config", config, "--json")


def test_shard_assignment_is_stable_and_spreads():
    assert shard_of("guide/process.md", 4) == shard_of("guide/process.md", 4) == 2  # same on every machine
    counts = [0] * 4
    for i in range(400):
        counts[shard_of(f"docs/file-{i}.txt", 4)] += 1
    assert min(counts) > 70
    assert parse_shard("3/4") == (3, 4)
    assert run("index", ".", "--shard", "4/4").exit_code == 2
    assert run("index", ".", "--shard", "1-4").exit_code == 2


@pytest.mark.parametrize("count", [1, 3])
def test_merged_shards_equal_the_single_process_index(fake, docs, small_chunks, tmp_path, count):
    ok("index", docs, "--index", tmp_path / "whole", "--config", small_chunks, "--json")
    build_shards(docs, tmp_path / "parts", count, small_chunks)
    result = run("search", "ocean", "--index", tmp_path / "parts")  # nothing searchable until merge, and it says so
    assert result.exit_code == 1 and "genretrieve merge" in result.output
    merged = ok("merge", tmp_path / "parts", "--json")
    assert merged["shards"] == count and [f["path"] for f in merged["files_failed"]] == ["broken.pdf"]
    assert_same_index(tmp_path / "whole", tmp_path / "parts")
    for query in QUERIES:
        for mode in ("gen", "keyword", "hybrid"):
            assert search(tmp_path / "parts", query, "--mode", mode) == search(tmp_path / "whole", query, "--mode", mode)
    assert (tmp_path / "parts" / "shards" / f"0-of-{count}").is_dir()  # kept, for incremental re-runs


def test_a_rerun_shard_merges_again_and_the_merged_index_then_updates_like_any(fake, docs, small_chunks, tmp_path):
    build_shards(docs, tmp_path / "parts", 2, small_chunks)
    ok("merge", tmp_path / "parts")
    (docs / "cars.txt").write_text("Electric cars need a charger at home.\n")
    fake.calls.clear()
    build_shards(docs, tmp_path / "parts", 2, small_chunks)
    assert all("charger" in text or "Electric" in text or "home" in text for text in fake.calls)  # only the edit
    ok("merge", tmp_path / "parts")
    ok("index", docs, "--index", tmp_path / "whole", "--config", small_chunks)
    assert_same_index(tmp_path / "whole", tmp_path / "parts")
    assert search(tmp_path / "parts", "charger for electric cars")[0]["path"] == "cars.txt"


def refused(index_dir):
    result = run("merge", index_dir)
    assert result.exit_code == 1, result.output
    return " ".join(result.output.split())  # rich wraps long lines


def test_merge_refuses_a_missing_shard_and_leaves_the_index_as_it_was(fake, docs, small_chunks, tmp_path):
    build_shards(docs, tmp_path / "parts", 3, small_chunks)
    ok("merge", tmp_path / "parts")
    before = search(tmp_path / "parts", "ocean tides")
    shutil.rmtree(tmp_path / "parts" / "shards" / "1-of-3")
    message = refused(tmp_path / "parts")
    assert "missing shard 1-of-3" in message and "--shard I/3 for I in 1" in message
    assert search(tmp_path / "parts", "ocean tides") == before
    assert "no shards under" in refused(tmp_path / "nothing")


def test_merge_refuses_duplicated_or_mixed_shards(fake, docs, small_chunks, tmp_path):
    parts = tmp_path / "parts" / "shards"
    build_shards(docs, tmp_path / "parts", 2, small_chunks, only=[0])
    shutil.copytree(parts / "0-of-2", parts / "1-of-2")  # a copy standing in for the missing shard
    message = refused(tmp_path / "parts")
    assert "1-of-2: holds shard 0-of-2 (a duplicated or renamed folder)" in message
    assert "missing shard 1-of-2" in message

    shutil.rmtree(parts / "1-of-2")
    shutil.copytree(parts / "0-of-2", parts / "0-of-2 (copy)")
    assert "0-of-2 (copy): not a shard folder" in refused(tmp_path / "parts")
    shutil.rmtree(parts / "0-of-2 (copy)")

    build_shards(docs, tmp_path / "parts", 2, small_chunks, only=[1])
    build_shards(docs, tmp_path / "parts", 3, small_chunks, only=[2])
    assert "shards of different splits (0-of-2, 1-of-2, 2-of-3)" in refused(tmp_path / "parts")
    shutil.rmtree(parts / "2-of-3")
    ok("merge", tmp_path / "parts")


def test_merge_refuses_shards_from_other_models_another_folder_or_an_unfinished_run(
        fake, docs, small_chunks, tmp_path, monkeypatch):
    build_shards(docs, tmp_path / "parts", 2, small_chunks)
    shard = tmp_path / "parts" / "shards" / "1-of-2"
    manifest = json.loads((shard / "manifest.json").read_text())
    edited = {**manifest, "identity": {**manifest["identity"], "adapter": {"fingerprint": "other", "trained": True}}}
    (shard / "manifest.json").write_text(json.dumps(edited))
    assert "1-of-2: built with other settings than 0-of-2 (adapter:" in refused(tmp_path / "parts")

    edited = {**manifest, "shard": {**manifest["shard"], "generation": manifest["shard"]["generation"] - 1}}
    (shard / "manifest.json").write_text(json.dumps(edited))
    assert "1-of-2: incomplete" in refused(tmp_path / "parts")

    (shard / "manifest.json").write_text(json.dumps(manifest))
    (docs / "new.txt").write_text("A file only the second run of shard 0 sees.\n")
    build_shards(docs, tmp_path / "parts", 2, small_chunks, only=[0])
    assert "saw another folder than 0-of-2" in refused(tmp_path / "parts")


def test_engine_ray_without_ray_says_how_to_install(fake, docs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: `import ray` raises ImportError
    result = run("index", docs, "--index", tmp_path / "ix", "--engine", "ray")
    assert result.exit_code == 2 and "pip install 'genretrieve[ray]'" in result.output
    assert not (tmp_path / "ix").exists()
    assert run("index", docs, "--engine", "ray", "--shard", "0/2").exit_code == 2
    assert run("index", docs, "--workers", "2").exit_code == 2  # a Ray flag without --engine ray
