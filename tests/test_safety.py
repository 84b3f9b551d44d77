"""The harmful-query probe on synthetic features with a known answer: fitting, feature choice, threshold."""
import json

import numpy as np
import pytest

from genretrieve.safety import CALIBRATION_FILE, SafetyProbe, auroc, load_probe, threshold_for
from genretrieve.safety.calibrate import threshold_for_each
from genretrieve.safety.calibrate import calibration_record, write_calibration
from genretrieve.safety.data import FitData
from genretrieve.safety.fit import choose, validation_rows
from genretrieve.safety.probe import standardised_probe


def test_auroc_hand_computed():
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auroc(np.array([0.1]), np.array([0.9])) == 0.0
    assert auroc(np.array([0.5, 0.9]), np.array([0.7])) == 0.5
    assert auroc(np.array([0.5]), np.array([0.5])) == 0.5  # a tie counts half


@pytest.mark.parametrize("rate,flagged", [(0.0, 0), (0.01, 1), (0.05, 5), (0.123, 12), (0.3, 30)])
def test_threshold_flags_the_requested_share(rate, flagged):
    scores = np.random.default_rng(0).permutation(np.linspace(0, 1, 100))
    assert int((scores >= threshold_for(scores, rate)).sum()) == flagged


def test_threshold_never_splits_ties_above_the_rate():
    scores = np.array([0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert (scores >= threshold_for(scores, 0.2)).sum() == 0  # 3 tied at the top cannot fit in 2
    assert (scores >= threshold_for(scores, 0.3)).sum() == 3
    with pytest.raises(ValueError):
        threshold_for(scores, 1.0)


def synthetic(signal_in: str, n: int = 1200, seed: int = 0) -> tuple[dict, FitData]:
    """Three feature blocks; only `signal_in` separates harmful from benign. Groups as the real data has them."""
    rng = np.random.default_rng(seed)
    groups = rng.choice(["harmful", "pool", "natural", "borderline"], size=n, p=[0.35, 0.3, 0.2, 0.15])
    harmful = (groups == "harmful").astype(int)
    values = {"states": rng.normal(size=(n, 12)) * 50 + 7, "gen": rng.normal(size=(n, 8)), "teacher": rng.normal(size=(n, 6))}
    values[signal_in][:, 0] += 3.0 * harmful * values[signal_in][:, 0].std()
    return values, FitData([f"text {i}" for i in range(n)], harmful, groups)


@pytest.mark.parametrize("block", ["states", "teacher"])
def test_choice_finds_the_informative_block(block):
    values, data = synthetic(block)
    (features, l2), table = choose(values, data, rate=0.05, candidates=("states", "gen", "teacher"), l2s=(1e-2,))
    assert features == block
    by = {row["features"]: row for row in table}
    assert by[block]["auroc"] > 0.95 and by["gen"]["auroc"] < 0.65
    assert by[block]["harmful_flagged"] > 0.5 > by["gen"]["harmful_flagged"]


def test_validation_split_is_fixed_by_text():
    texts = [f"q{i}" for i in range(2000)]
    val = validation_rows(texts)
    assert 0.2 < val.mean() < 0.3
    assert (validation_rows(texts[::-1])[::-1] == val).all()  # order does not matter


def test_standardised_probe_survives_scale_and_round_trips(tmp_path):
    values, data = synthetic("states")
    rows = np.arange(len(data.texts))
    probe = standardised_probe("states+teacher", values, data.harmful, data.weights(rows), 1e-2)
    scores = probe.scores(values)
    assert auroc(scores[data.harmful == 1], scores[data.harmful == 0]) > 0.95  # raw scale 50: standardisation matters
    probe.save(tmp_path)
    assert not list(tmp_path.glob(".*tmp"))  # written through a temporary file, renamed
    again = SafetyProbe.load(tmp_path)
    assert again == probe and np.allclose(again.scores(values), scores)
    assert SafetyProbe.load(tmp_path / "nowhere") is None


def test_group_weights_give_each_group_its_share():
    _, data = synthetic("gen")
    rows = np.arange(len(data.texts))
    w = data.weights(rows)
    share = {g: w[data.groups == g].sum() / w.sum() for g in np.unique(data.groups)}
    assert share["harmful"] == pytest.approx(0.5 / 0.9) and share["natural"] == pytest.approx(0.15 / 0.9)


def test_legacy_probe_files_still_load(tmp_path):
    """Probes written before the states feature: features "both", no standardisation."""
    legacy = {"features": "both", "weights": [1.0, 0.0, 0.0, -1.0], "bias": 0.0, "threshold": 0.5,
              "calibration": {"target_false_flag_rate": 0.01}}
    (tmp_path / "safety.json").write_text(json.dumps(legacy))
    probe = SafetyProbe.load(tmp_path)
    assert probe.needs == ["gen", "teacher"]
    gen, teacher = np.array([[2.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [0.0, 2.0]])
    assert probe.flags({"gen": gen, "teacher": teacher}).tolist() == [True, False]


def test_user_calibration_applies_only_to_its_probe(tmp_path):
    adapter, index = tmp_path / "adapter", tmp_path / "index"
    adapter.mkdir(), index.mkdir()
    probe = SafetyProbe("teacher", [1.0, -1.0], 0.0, 0.5, {"source": "fit", "set": "natural", "rate": 0.01, "n": 10},
                        [0.0, 0.0], [1.0, 1.0])
    probe.save(adapter)
    scores = np.linspace(0.0, 1.0, 11)
    write_calibration(calibration_record(probe, scores, 0.2, {"kind": "user", "file": "mine.txt"}), index)
    loaded = load_probe(adapter, index)
    assert loaded.threshold == pytest.approx(threshold_for(scores, 0.2)) and loaded.calibration["file"] == str(
        index / CALIBRATION_FILE)
    assert load_probe(adapter).threshold == 0.5  # without the index: the fit-time threshold
    refit = SafetyProbe("teacher", [2.0, -1.0], 0.0, 0.5, {}, [0.0, 0.0], [1.0, 1.0])
    refit.save(adapter)  # the adapter's probe changed: the old calibration no longer applies
    stale = load_probe(adapter, index)
    assert stale.threshold == 0.5 and stale.calibration["ignored"] == [str(index / CALIBRATION_FILE)]


def test_the_threshold_for_each_set_holds_the_rate_in_every_set():
    rng = np.random.default_rng(1)
    faqs, everyday = rng.normal(0, 1, 900), rng.normal(1.5, 1, 100)  # everyday questions score higher
    threshold = threshold_for_each([faqs, everyday], 0.02)
    assert np.mean(faqs >= threshold) <= 0.02 and np.mean(everyday >= threshold) <= 0.02
    pooled = threshold_for(np.concatenate([faqs, everyday]), 0.02)
    assert np.mean(everyday >= pooled) > 0.02  # one pooled quantile lets the small set pay for the large one
    assert threshold_for_each([faqs, []], 0.02) == threshold_for(faqs, 0.02)
