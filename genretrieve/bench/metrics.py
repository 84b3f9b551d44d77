"""Ranking metrics for one query at a time: nDCG@k, recall@k, MRR@k, the two safety hit rates,
and a paired bootstrap over queries to say whether one system's mean beats another's.

Standard definitions (the ones BEIR's pytrec_eval computes): nDCG uses graded gains with a
log2(rank + 1) discount and the ideal DCG of the query's own qrels; recall counts only docs
with a positive gain. Plain Python, no trec_eval dependency; averaging over queries is the
caller's job, so a per-query list stays available for paired comparisons.
"""
from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import numpy as np


def dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, start=1))


def ndcg_at_k(ranked_ids: Sequence[str], qrels: Mapping[str, float], k: int) -> float:
    """nDCG@k of one ranking; 0.0 when the query has no positive judgement (nothing to find)."""
    ideal = dcg(sorted((g for g in qrels.values() if g > 0), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([max(qrels.get(doc, 0), 0) for doc in ranked_ids[:k]]) / ideal


def recall_at_k(ranked_ids: Sequence[str], qrels: Mapping[str, float], k: int) -> float:
    relevant = {doc for doc, g in qrels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked_ids[:k])) / len(relevant)


def mrr_at_k(ranked_ids: Sequence[str], qrels: Mapping[str, float], k: int) -> float:
    """1 / rank of the first relevant doc within the top k, else 0."""
    for rank, doc in enumerate(ranked_ids[:k], start=1):
        if qrels.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def top_k_accuracy(rankings: Sequence[Sequence[str]], targets: Sequence[str], k: int) -> float:
    """Share of queries whose own target id is in their top k (AdvBench-IR's top-k accuracy)."""
    if len(rankings) != len(targets):
        raise ValueError(f"{len(rankings)} rankings but {len(targets)} targets")
    if not targets:
        return 0.0
    return sum(target in ranked[:k] for ranked, target in zip(rankings, targets)) / len(targets)


def any_hit_at_k(rankings: Sequence[Sequence[str]], ids: Collection[str], k: int) -> float:
    """Share of queries with ANY id from `ids` (e.g. every harmful passage) in their top k."""
    if not rankings:
        return 0.0
    ids = set(ids)
    return sum(any(doc in ids for doc in ranked[:k]) for ranked in rankings) / len(rankings)


def mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def paired_bootstrap(scores: Sequence[float], baseline: Sequence[float], resamples: int = 2000, seed: int = 0,
                     level: float = 0.95) -> dict:
    """Mean of `scores - baseline` over paired queries and its percentile bootstrap CI.

    Queries are resampled with replacement, the same draws for every call with the same seed and
    query count, so several systems compared with one baseline see identical resamples. Pairing
    removes the spread between easy and hard queries that two independent CIs would double count.
    """
    a, b = np.asarray(scores, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores need equal 1-D shapes, got {a.shape} and {b.shape}")
    if not 0 < level < 1 or resamples < 1:
        raise ValueError("level must be in (0, 1) and resamples >= 1")
    diff = a - b
    if len(diff) == 0:
        return {"delta": 0.0, "ci": [0.0, 0.0], "level": level, "resamples": resamples, "seed": seed}
    draws = np.random.default_rng(seed).integers(0, len(diff), size=(resamples, len(diff)))
    means = diff[draws].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return {"delta": float(diff.mean()), "ci": [float(low), float(high)], "level": level,
            "resamples": resamples, "seed": seed}


def ann_recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray, k: int) -> float:
    """An approximate index against exact search: the share of the exact top-k ids (ignoring -1
    padding) found in the approximate top k. Not `recall_at_k`, which scores a ranking against qrels."""
    approx, exact = np.atleast_2d(approx_ids)[:, :k], np.atleast_2d(exact_ids)[:, :k]
    hits = sum(len(np.intersect1d(a[a >= 0], e[e >= 0])) for a, e in zip(approx, exact))
    total = int((exact >= 0).sum())
    return hits / total if total else 1.0
