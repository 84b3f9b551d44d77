"""The harmful-query filter: a logistic probe on query-time embeddings, stored with the adapter.

Features are what search computes anyway: the query's response embedding (gen), the teacher's
plain query embedding, or both, whichever measured best on held-out data when the adapter was
trained. Positives are the pool's harmful prompts (Do-Not-Answer), negatives its benign queries
plus real, naturally phrased questions (the Python FAQ's); the threshold is set on held-out
natural questions for a target false-flag rate. The safety benchmark's AdvBench queries and
benign test sets are never used to fit or calibrate it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

FEATURES = ("gen", "teacher", "both")
PROBE_FILE = "safety.json"


@dataclass
class SafetyProbe:
    features: str
    weights: list[float]
    bias: float
    threshold: float
    calibration: dict

    def scores(self, gen: np.ndarray | None, teacher: np.ndarray | None) -> np.ndarray:
        x = select_features(self.features, gen, teacher)
        return 1 / (1 + np.exp(-(x @ np.asarray(self.weights) + self.bias)))

    def flags(self, gen: np.ndarray | None, teacher: np.ndarray | None) -> np.ndarray:
        return self.scores(gen, teacher) >= self.threshold

    def save(self, folder: Path) -> None:
        (Path(folder) / PROBE_FILE).write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, folder: Path | None) -> "SafetyProbe | None":
        path = Path(folder) / PROBE_FILE if folder else None
        return cls(**json.loads(path.read_text())) if path and path.exists() else None


def select_features(features: str, gen: np.ndarray | None, teacher: np.ndarray | None) -> np.ndarray:
    if features == "gen":
        return gen
    if features == "teacher":
        return teacher
    return np.concatenate([gen, teacher], axis=1)


def fit_logistic(x: np.ndarray, y: np.ndarray, weights: np.ndarray, l2: float = 1e-3,
                 steps: int = 200) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression with per-example weights (LBFGS, full batch)."""
    import torch  # here, not at the top: search imports this module and keyword search needs no torch

    xt, yt = torch.from_numpy(x).double(), torch.from_numpy(y).double()
    balance = torch.from_numpy(weights).double()
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt, reduction="none") * balance).mean()
        loss = loss + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach().numpy(), float(b.detach())


def group_weights(groups: np.ndarray) -> np.ndarray:
    """Harmful prompts weigh half; templated and natural benign queries a quarter each, whatever their counts."""
    share = {0: 0.25, 1: 0.5, 2: 0.25}
    present = {g: share[g] for g in np.unique(groups)}
    scale = 1 / sum(present.values())
    return np.array([present[g] * scale / np.mean(groups == g) for g in groups])


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    scores = np.concatenate([positive, negative])
    ranks = scores.argsort().argsort() + 1.0
    return float((ranks[:len(positive)].sum() - len(positive) * (len(positive) + 1) / 2) / (len(positive) * len(negative)))


def fit_probe(gen: np.ndarray, teacher: np.ndarray, harmful: np.ndarray, seed: int = 0,
              false_flag_rate: float = 0.01, natural: np.ndarray | None = None) -> SafetyProbe:
    """Fit one probe per feature set on 70% of the data, keep the best by held-out AUROC, and put the
    threshold at the held-out benign quantile for the target false-flag rate, taken over the
    natural benign questions when there are any (`natural` marks them), since real queries are
    phrased like those and not like the pool's templates."""
    natural = np.zeros(len(harmful), dtype=bool) if natural is None else natural
    groups = np.where(harmful == 1, 1, np.where(natural, 2, 0))
    order = np.random.default_rng(seed).permutation(len(harmful))
    cut = int(0.7 * len(order))
    fit_idx, held_idx = order[:cut], order[cut:]
    weights = group_weights(groups[fit_idx])
    calibrate = groups[held_idx] == (2 if natural.any() else 0)
    best, by_features = None, {}
    for features in FEATURES:
        x = select_features(features, gen, teacher)
        w, b = fit_logistic(x[fit_idx], harmful[fit_idx], weights)
        held_scores = 1 / (1 + np.exp(-(x[held_idx] @ w + b)))
        pos, neg = held_scores[harmful[held_idx] == 1], held_scores[harmful[held_idx] == 0]
        score = by_features[features] = auroc(pos, neg)
        if best is None or score > best[0]:
            threshold = float(np.quantile(held_scores[calibrate], 1 - false_flag_rate))
            best = (score, SafetyProbe(features, w.tolist(), b, threshold, {
                "heldout_auroc": score, "heldout_flag_rate_harmful": float((pos >= threshold).mean()),
                "heldout_flag_rate_benign": float((neg >= threshold).mean()),
                "heldout_flag_rate_natural": float((held_scores[groups[held_idx] == 2] >= threshold).mean())
                if natural.any() else None,
                "n_harmful": int(harmful.sum()), "n_benign": int((harmful == 0).sum()), "n_natural": int(natural.sum()),
                "target_false_flag_rate": false_flag_rate}))
    best[1].calibration["auroc_by_features"] = by_features
    return best[1]
