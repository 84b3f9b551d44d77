"""The builders of the shipped data live in tools/, run as scripts; the package keeps the data and its loaders."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_pool_builder_runs_as_a_script():
    done = subprocess.run([sys.executable, "tools/build_pool.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and "--seed" in done.stdout, done.stderr


@pytest.mark.skipif(sys.version_info[:3] != (3, 11, 7), reason="the shipped passages were built with CPython 3.11.7")
def test_the_devset_builder_gives_the_shipped_distractors():
    from genretrieve.bench.beir import load_beir
    from tools.build_devset import OUT, python_passages

    shipped = load_beir(OUT).corpus
    built = python_passages()
    assert [p["_id"] for p in built] == [i for i in shipped if i.startswith("py-")]
    assert all(shipped[p["_id"]]["text"] == p["text"] and shipped[p["_id"]]["title"] == p["title"] for p in built)


def test_the_package_no_longer_holds_the_builders():
    import importlib.util

    for gone in ("genretrieve.train.natural", "genretrieve.bench.devset"):
        assert importlib.util.find_spec(gone) is None, gone
    from genretrieve.train import pool

    assert [n for n in vars(pool) if n.startswith(("build", "wordnet_", "foldoc_", "python_"))] == []
    record = json.loads((pool.DATA / "queries.provenance.json").read_text())
    assert record["command"].startswith("python tools/build_pool.py")  # the command that rebuilds it exists
    assert (ROOT / record["command"].split()[1]).exists()
