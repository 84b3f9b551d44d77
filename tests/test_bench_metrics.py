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
