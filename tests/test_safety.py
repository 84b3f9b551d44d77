"""The harmful-query probe: AUROC arithmetic, feature choice, and threshold calibration."""
import numpy as np

from genretrieve.safety import SafetyProbe, auroc, fit_probe


def test_auroc_hand_computed():
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auroc(np.array([0.1]), np.array([0.9])) == 0.0
    assert auroc(np.array([0.5, 0.9]), np.array([0.7])) == 0.5


def test_probe_picks_the_informative_features_and_calibrates_the_threshold(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    harmful = (np.arange(n) < 200).astype(int)
    teacher = rng.normal(size=(n, 8))
    teacher[:, 0] += 3.0 * harmful  # only the teacher features carry the signal
    gen = rng.normal(size=(n, 8))
    probe = fit_probe(gen, teacher, harmful, false_flag_rate=0.05)
    assert probe.features in ("teacher", "both")
    assert probe.calibration["auroc_by_features"]["gen"] < 0.7 < probe.calibration["heldout_auroc"]
    assert probe.calibration["heldout_flag_rate_benign"] <= 0.06
    flags = probe.flags(gen, teacher)
    assert flags[harmful == 1].mean() > 0.5 > flags[harmful == 0].mean()
    probe.save(tmp_path)
    assert SafetyProbe.load(tmp_path) == probe and SafetyProbe.load(tmp_path / "nowhere") is None


def test_natural_questions_calibrate_the_threshold():
    rng = np.random.default_rng(1)
    n_harm, n_templ, n_nat = 300, 600, 200
    harmful = np.array([1] * n_harm + [0] * (n_templ + n_nat))
    natural = np.array([False] * (n_harm + n_templ) + [True] * n_nat)
    teacher = rng.normal(size=(len(harmful), 6))
    teacher[:n_harm, 0] += 2.5  # harmful: a weaker signal than the phrasing
    teacher[natural, 1] += 8.0  # "natural phrasing", shared by the harmful prompts in this toy
    teacher[:n_harm, 1] += 8.0
    gen = rng.normal(size=teacher.shape)
    templated_only = fit_probe(gen, teacher, harmful)
    with_natural = fit_probe(gen, teacher, harmful, natural=natural)
    # the threshold moves up to where real questions sit, and few of them are flagged
    assert with_natural.threshold > templated_only.threshold
    assert with_natural.calibration["heldout_flag_rate_natural"] <= 0.05
    assert with_natural.flags(gen, teacher)[natural].mean() < templated_only.flags(gen, teacher)[natural].mean()
    assert with_natural.flags(gen, teacher)[harmful == 1].mean() > 0.5
