"""No tracebacks (issue 14): config and arguments are checked before any model loads; help and pipes behave."""
import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from genretrieve.cli import app
from genretrieve.config import ConfigError, load_config

from .helpers import fixture_docs

runner = CliRunner()


def run(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


@pytest.fixture
def no_models(monkeypatch):
    def load(config=None):
        raise AssertionError("the models were loaded before a cheap check")
    monkeypatch.setattr("genretrieve.models.load.load_encoder", load)


@pytest.fixture
def docs(tmp_path):
    return fixture_docs(tmp_path / "docs")


# -- 5. every config key is checked when the config loads --------------------------------------------
@pytest.mark.parametrize("yaml_text, words", [
    ("search: {k: ten}", ["search.k", "integer"]),
    ("search: {k: 0}", ["search.k", "at least 1"]),
    ("index: {chunk_tokens: -5}", ["index.chunk_tokens", "at least"]),
    ("index: {chunk_overlap: 1.5}", ["index.chunk_overlap"]),
    ("model: {dtype: bf32}", ["model.dtype", "bfloat16"]),
    ("model: {batch_size: 2.5}", ["model.batch_size", "integer"]),
    ("search: {mode: nonsense}", ["search.mode", "teacher"]),
    ("train: {ridge_lambdas: [1, x]}", ["train.ridge_lambdas"]),
    ("train: {gradient_checkpointing: maybe}", ["train.gradient_checkpointing", "true or false"]),
    ("model: {backbone: 3}", ["model.backbone", "text"]),
])
def test_bad_config_values_are_refused_at_load(tmp_path, yaml_text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert all(w in str(caught.value) for w in words), str(caught.value)


def test_good_config_values_load_and_yaml_float_strings_are_accepted(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("train: {lr: 1e-4, ridge_lambdas: [1, 10.0]}\nsearch: {hybrid_weight: 1}\n")
    config = load_config(path)  # PyYAML reads 1e-4 as a string
    assert config.train.lr == 1e-4 and config.search.hybrid_weight == 1.0
    assert isinstance(load_config(None, search__k=3).search.k, int)


def test_the_config_choice_lists_agree_with_the_code_that_uses_them():
    from genretrieve import config
    from genretrieve.index.ondisk import ONDISK_KINDS
    from genretrieve.index.vectors import KINDS
    from genretrieve.models.device import DTYPES

    assert set(config.DTYPES) == {"auto", *DTYPES}
    assert config.INDEX_KINDS == KINDS + ONDISK_KINDS
    text = open(__import__("genretrieve.train.run", fromlist=["x"]).__file__).read()
    assert all(f'"{fit}"' in text for fit in config.FITS)


def test_a_bad_config_fails_before_the_models_and_leaves_no_index(no_models, docs, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("index: {chunk_tokens: -5}\n")
    result = run("index", docs, "--index", tmp_path / "ix", "--config", path)
    assert result.exit_code == 2 and "index.chunk_tokens" in result.output
    assert not (tmp_path / "ix").exists()
    path.write_text("search: {k: ten}\n")
    result = run("search", "car", "--index", tmp_path / "ix", "--config", path)
    assert result.exit_code == 2 and "search.k" in result.output


# -- 6. cheap checks before expensive work ----------------------------------------------------------
@pytest.mark.parametrize("args, code, words", [
    (["search", "car", "-k", "0"], 2, "search.k"),
    (["search", "car", "--mode", "nonsense"], 2, "search.mode"),
    (["search", "car", "--safety", "maybe"], 2, "search.safety"),
    (["search", "car", "--hybrid-weight", "2"], 2, "search.hybrid_weight"),
    (["search", "car"], 1, "no index at"),
    (["index", "DOCS", "--kind", "bogus"], 2, "index.kind"),
    (["index", "DOCS", "--doc-encoder", "bogus"], 2, "index.doc_encoder"),
    (["index", "EMPTY"], 2, "no supported files"),
])
def test_cheap_checks_come_before_the_models(no_models, docs, tmp_path, args, code, words):
    (tmp_path / "empty").mkdir()
    args = [{"DOCS": docs, "EMPTY": tmp_path / "empty"}.get(a, a) for a in args]
    result = run(*args, "--index", tmp_path / "missing")
    assert result.exit_code == code and words in result.output, result.output
    assert not (tmp_path / "missing").exists()


# -- 11. --help shows the defaults --------------------------------------------------------------------
def test_help_shows_the_defaults():
    result = run("search", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())  # undo rich's wrapping inside the box
    assert "[default: 10]" in text and "[default: teacher]" in text and "[default: indexes/default" in text
    assert "[default: 4096," in " ".join(run("train", "--help").output.replace("│", " ").split())


# -- 12. a closed pipe is not an error ----------------------------------------------------------------
def test_output_into_a_closed_pipe_exits_0(fake, docs, tmp_path):
    from genretrieve.index.build import build_index
    from genretrieve.config import Config

    many = tmp_path / "many"
    many.mkdir()
    for i in range(300):
        (many / f"{i:03}.txt").write_text(f"The capital of country {i} is a city. " * 40)
    build_index(many, tmp_path / "ix", fake, Config())
    code = "import sys; from genretrieve.cli import app; sys.argv = ['genretrieve'] + sys.argv[1:]; app()"
    shell = (f"{sys.executable} -c \"{code}\" search capital --mode keyword --safety off -k 300 --json --index {tmp_path / 'ix'}"
             " | head -c 100 > /dev/null; echo ${PIPESTATUS[0]}")
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True,
                          env={**os.environ, "GENRETRIEVE_HOME": str(tmp_path / "home")})
    assert done.stdout.strip() == "0", done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


def test_sqlite_errors_past_the_open_checks_are_one_line(monkeypatch, tmp_path):
    import sqlite3

    from genretrieve.config import Config
    from genretrieve.index.build import build_index
    from genretrieve.index.store import Store

    from .helpers import FakeEncoder

    build_index(fixture_docs(tmp_path / "docs"), tmp_path / "ix", FakeEncoder(), Config())
    for error, words in [(sqlite3.DatabaseError("database disk image is malformed"), "damaged"),
                         (sqlite3.OperationalError("database is locked"), "busy")]:
        def fail(self, pattern, error=error):  # a page damaged mid-file, or a writer holding the database
            raise error
        monkeypatch.setattr(Store, "ids_matching_path", fail)
        result = run("search", "car", "--mode", "keyword", "--path", "x*", "--index", tmp_path / "ix")
        assert result.exit_code == 1 and words in result.output and "Traceback" not in result.output
