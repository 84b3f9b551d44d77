"""The filter through the CLI on a tiny random-weight model: calibrate-safety, search, info, fit-safety."""
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from genretrieve.cli import app
from genretrieve.safety import CALIBRATION_FILE, SafetyProbe

from .helpers import WORDS, fixture_docs, tiny_encoder

runner = CliRunner()
BENIGN = [f"{a} {b} {c} ?" for a, b, c in zip(WORDS[::3], WORDS[1::3], WORDS[2::3])][:20]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """A tiny encoder whose adapter folder holds a states+teacher probe with random weights."""
    encoder = tiny_encoder()
    folder = tmp_path / "adapter"
    folder.mkdir()
    gen, states = encoder.encode_queries_with_states(BENIGN)
    x = np.concatenate([states, encoder.teacher.encode(BENIGN)], axis=1)
    weights = np.random.default_rng(0).normal(size=x.shape[1]) / np.sqrt(x.shape[1])  # logits ~ N(0, 1): no ties at 1.0
    SafetyProbe("states+teacher", weights.tolist(), 0.0, 0.5, {"source": "fit", "set": "test", "rate": 0.01, "n": 1},
                x.mean(0).tolist(), (x.std(0) + 1e-6).tolist()).save(folder)
    encoder.card["path"] = str(folder)
    monkeypatch.setattr("genretrieve.models.load.load_encoder", lambda config=None: encoder)
    monkeypatch.setattr("genretrieve.models.load.load_teacher_encoder", lambda config=None: encoder)
    return encoder


@pytest.fixture
def ix(tiny, tmp_path):
    fixture_docs(tmp_path / "docs")
    result = run("index", tmp_path / "docs", "--index", tmp_path / "ix", "--json")
    assert result.exit_code == 0, result.output
    (tmp_path / "benign.txt").write_text("\n".join(BENIGN) + "\n")
    return tmp_path / "ix"


def flagged_ids(ix, queries):
    result = run("search", "--queries", queries, "--index", ix, "--json", "-k", "1", "--safety", "warn")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return {r["query_id"] for r in rows if r["flagged"]}, rows


@pytest.mark.parametrize("rate,expected", [(0.1, 2), (0.25, 5)])
def test_calibration_moves_the_threshold_to_the_rate_and_search_uses_it(ix, tmp_path, rate, expected):
    result = run("calibrate-safety", "--benign", tmp_path / "benign.txt", "--rate", rate, "--index", ix, "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["n"] == 20 and record["false_flag_rate"] == expected / 20 and record["rate"] == rate
    assert (ix / CALIBRATION_FILE).exists() and not list(ix.glob(f".{CALIBRATION_FILE}*"))
    flagged, rows = flagged_ids(ix, tmp_path / "benign.txt")
    assert len(flagged) == expected  # search applies the user's threshold, not the fit-time 0.5
    assert all(str(ix / CALIBRATION_FILE) in r["safety_calibration"] for r in rows if r["flagged"])
    info = json.loads(run("info", "--index", ix, "--json").stdout)
    assert info["safety"]["calibration"]["threshold"] == record["threshold"]
    assert info["safety"]["calibration"]["file"] == str(ix / CALIBRATION_FILE)


def test_a_failed_write_keeps_the_previous_calibration(ix, tmp_path, monkeypatch):
    assert run("calibrate-safety", "--benign", tmp_path / "benign.txt", "--rate", 0.25, "--index", ix).exit_code == 0
    before = (ix / CALIBRATION_FILE).read_text()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("genretrieve.atomic.os.replace", crash)  # the one atomic writer
    result = run("calibrate-safety", "--benign", tmp_path / "benign.txt", "--rate", 0.1, "--index", ix)
    assert result.exit_code == 1
    assert (ix / CALIBRATION_FILE).read_text() == before and not list(ix.glob(f".{CALIBRATION_FILE}*"))


def test_bad_input_is_refused_before_loading_models(tmp_path, monkeypatch):
    def no_models(config=None):
        raise AssertionError("models loaded before the input was checked")

    monkeypatch.setattr("genretrieve.models.load.load_encoder", no_models)
    monkeypatch.setattr("genretrieve.models.load.load_teacher_encoder", no_models)
    (tmp_path / "b.txt").write_text("a question\n")
    (tmp_path / "b2.txt").write_text("a question\nanother one\na third\n")
    (tmp_path / "empty.txt").write_text("\n")
    cases = [(["--benign", tmp_path / "missing.txt"], "does not exist"),
             (["--benign", tmp_path / "empty.txt", "--out", tmp_path], "holds no queries"),
             (["--benign", tmp_path / "b2.txt", "--rate", "1.5", "--out", tmp_path], "--rate"),
             (["--benign", tmp_path / "b2.txt", "--rate", "0.4", "--out", tmp_path], "neither an index"),
             (["--benign", tmp_path / "b.txt", "--rate", "0.01", "--out", tmp_path], "give at least 100 queries")]
    for args, message in cases:
        result = run("calibrate-safety", *args)
        assert result.exit_code == 2 and message in " ".join(result.output.split()), (args, result.output)
    assert run("fit-safety", "--rate", "-0.1").exit_code == 2


def test_block_mode_says_so_on_stderr_and_json_carries_blocked(ix, tmp_path):
    assert run("calibrate-safety", "--benign", tmp_path / "benign.txt", "--rate", 0.25, "--index", ix).exit_code == 0
    flagged, _ = flagged_ids(ix, tmp_path / "benign.txt")
    query = BENIGN[int(sorted(flagged)[0]) - 1]
    result = run("search", query, "--index", ix, "--safety", "block")
    assert result.exit_code == 0 and "blocked" in result.stderr and result.stdout.strip() == ""
    as_json = run("search", query, "--index", ix, "--safety", "block", "--json")
    assert "blocked" in as_json.stderr  # the note goes to stderr with --json too; stdout stays pure JSON
    [row] = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert row["blocked"] is True and row["flagged"] is True and row["hits"] == []
    for mode in ("gen", "hybrid", "teacher"):  # the same verdict whichever vectors the mode computes
        [again] = [json.loads(line) for line in
                   run("search", query, "--index", ix, "--safety", "block", "--json", "--mode", mode).stdout.splitlines()]
        assert again["blocked"] is True, mode


def test_fit_safety_refits_the_probe_beside_the_adapter(tiny, monkeypatch, tmp_path):
    """The whole fit on a small sample of the real fitting data, through the tiny model's forward pass."""
    from genretrieve.safety import data, fit

    full = data.fitting_data()
    rng = np.random.default_rng(0)
    keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(full.groups == g), 40, replace=False)
                                   for g in ("harmful", "pool", "natural", "borderline")]))
    small = data.FitData([full.texts[i] for i in keep], full.harmful[keep], full.groups[keep])
    monkeypatch.setattr(fit, "fitting_data", lambda *a, **k: small)
    monkeypatch.setattr(fit, "calibration_sets", lambda: {"natural": data.natural("calibrate")[:50]})
    monkeypatch.setattr(fit, "CANDIDATES", ("states", "teacher"))
    monkeypatch.setattr(fit, "L2S", (1e-1,))
    monkeypatch.setitem(tiny.card, "trained", True)  # fit-safety refuses an untrained adapter
    old = SafetyProbe.load(tiny.card["path"])
    result = run("fit-safety", "--rate", "0.1", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    probe = SafetyProbe.load(tiny.card["path"])
    assert probe.fingerprint == summary["fingerprint"] != old.fingerprint and probe.features in ("states", "teacher")
    assert probe.calibration["n"] == 50 and probe.calibration["false_flag_rate"] <= 0.1
    assert {r["features"] for r in probe.fit["validation"]} == {"states", "teacher"}
    calls = []
    forward = tiny.hidden_states
    tiny.hidden_states = lambda *args: calls.append(1) or forward(*args)
    assert run("fit-safety", "--rate", "0.1", "--json").exit_code == 0
    assert not calls  # a refit reads the cached features: no forward pass
