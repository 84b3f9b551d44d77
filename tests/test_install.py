"""Use outside the repo: build the wheel, install it into a fresh venv, and run it from another directory.

The fresh venv borrows this environment's dependencies through a .pth file (torch and friends
are gigabytes, and tests stay offline), but genretrieve itself is a real, non-editable install
built from a copy of the source tree: what a wheel lacks (the named configs, the shipped data)
fails here.
"""
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .serve_helpers import ServedFake, build_fixture_index

REPO = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns("__pycache__", "*.egg-info", ".venv", "build", "dist")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("configs", "genretrieve"):
        shutil.copytree(REPO / name, source / name, symlinks=True, ignore=SKIP)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # the wheel is built by this environment's setuptools (the new venv's own may predate bdist_wheel)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source),
                           "-w", str(root / "dist")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    [wheel] = (root / "dist").glob("genretrieve-*.whl")
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", str(wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    shutil.rmtree(source)  # nothing may still point into it
    return venv


def run(venv, *args, cwd):
    return subprocess.run([str(venv / "bin" / "genretrieve"), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "HF_HUB_OFFLINE": "1"})


@pytest.mark.slow
def test_named_configs_work_from_another_directory(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import genretrieve, genretrieve.config as c; "
                            "print(genretrieve.__file__); print(c.resolve_config_path('qwen2.5-coder-1.5b'))"],
                           capture_output=True, text=True, cwd=elsewhere, check=True).stdout.split()
    assert all(path.startswith(str(installed)) for path in where), where  # the installed copy, not the repo
    index_dir = build_fixture_index(tmp_path, ServedFake())
    # a real command that resolves the named config and needs no models: keyword search without the filter
    result = run(installed, "search", "capital of Germany", "--mode", "keyword", "--safety", "off", "-k", "1",
                 "--index", index_dir, "--config", "qwen2.5-coder-1.5b", "--json", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    [hit] = [json.loads(line) for line in result.stdout.splitlines()]
    assert hit["path"] == "notes.jsonl" and "Berlin" in hit["text"]
    missing = run(installed, "search", "x", "--mode", "keyword", "--index", index_dir, "--config", "no-such-config",
                  cwd=elsewhere)
    assert missing.returncode == 2 and "not found" in missing.stderr
    assert run(installed, "serve", "--help", cwd=elsewhere).returncode == 0
