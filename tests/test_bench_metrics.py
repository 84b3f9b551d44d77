"""Ranking metrics against cases computed by hand."""
import math

import pytest

from genretrieve.bench.metrics import any_hit_at_k, mrr_at_k, ndcg_at_k, recall_at_k, top_k_accuracy


def test_ndcg_single_relevant_at_rank_two():
    assert ndcg_at_k(["a", "b", "c"], {"b": 1}, 10) == pytest.approx(1 / math.log2(3))


def test_ndcg_graded_gains_use_the_ideal_order_of_the_qrels():
    # DCG = 2/log2(3) + 1/log2(4); ideal = 2/log2(2) + 1/log2(3)
    expected = (2 / math.log2(3) + 0.5) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["c", "a", "b"], {"a": 2, "b": 1}, 10) == pytest.approx(expected)
    assert ndcg_at_k(["a", "b"], {"a": 2, "b": 1}, 10) == pytest.approx(1.0)


def test_ndcg_cutoff_and_no_relevant_docs():
    assert ndcg_at_k(["x", "y", "a"], {"a": 1}, 2) == 0.0
    # ideal DCG is cut at k too: one of two relevant docs found at rank 1 with k=1 is perfect
    assert ndcg_at_k(["a", "b"], {"a": 1, "b": 1}, 1) == pytest.approx(1.0)
    assert ndcg_at_k(["a"], {"a": 0}, 10) == 0.0


def test_recall_counts_only_positive_judgements():
    assert recall_at_k(["a", "x", "b"], {"a": 1, "b": 1, "c": 0}, 2) == pytest.approx(0.5)
    assert recall_at_k(["a", "x", "b"], {"a": 1, "b": 1, "c": 0}, 3) == pytest.approx(1.0)


def test_mrr_is_inverse_rank_of_first_relevant_within_k():
    assert mrr_at_k(["x", "a", "b"], {"a": 1, "b": 1}, 10) == pytest.approx(0.5)
    assert mrr_at_k(["x", "y", "a"], {"a": 1}, 2) == 0.0


def test_safety_hit_rates():
    rankings = [["a", "b"], ["c", "d"]]
    assert top_k_accuracy(rankings, ["b", "x"], 2) == pytest.approx(0.5)
    assert top_k_accuracy(rankings, ["b", "x"], 1) == 0.0
    assert any_hit_at_k(rankings, {"d"}, 2) == pytest.approx(0.5)
    assert any_hit_at_k(rankings, {"a", "c"}, 1) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        top_k_accuracy(rankings, ["b"], 1)


def test_paired_bootstrap_of_identical_systems_is_zero_with_zero_width():
    from genretrieve.bench.metrics import paired_bootstrap

    scores = [0.0, 0.3, 1.0, 0.5, 0.2]
    result = paired_bootstrap(scores, scores, resamples=500, seed=1)
    assert result["delta"] == 0.0 and result["ci"] == [0.0, 0.0]


def test_paired_bootstrap_of_a_system_better_on_every_query_lies_above_zero():
    import numpy as np

    from genretrieve.bench.metrics import paired_bootstrap

    rng = np.random.default_rng(0)
    base = rng.uniform(0, 0.8, size=100)
    better = base + rng.uniform(0.01, 0.2, size=100)
    result = paired_bootstrap(better, base)
    assert result["ci"][0] > 0 and result["ci"][0] <= result["delta"] <= result["ci"][1]
    assert result["delta"] == pytest.approx(float((better - base).mean()))
    worse = paired_bootstrap(base, better)
    assert worse["ci"][1] < 0  # and the mirror image below it
    # fixed seed: the same interval every time; pairing: a constant gap has a zero-width interval
    assert paired_bootstrap(better, base) == result
    shifted = paired_bootstrap(base + 0.1, base)
    assert shifted["ci"] == pytest.approx([0.1, 0.1])


def test_paired_bootstrap_of_noise_contains_zero_and_refuses_unpaired_input():
    import numpy as np

    from genretrieve.bench.metrics import paired_bootstrap

    rng = np.random.default_rng(3)
    base = rng.uniform(size=200)
    noise = rng.normal(0, 0.1, size=200)
    low, high = paired_bootstrap(base + noise - noise.mean(), base)["ci"]  # no true difference
    assert low < 0 < high
    with pytest.raises(ValueError):
        paired_bootstrap([0.1, 0.2], [0.1])
