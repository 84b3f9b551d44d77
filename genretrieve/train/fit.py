"""Forward-only adapter fitting: ridge regression from the frozen states to the teacher's targets.

The embedding is linear in the mean of the 10 hidden states h̄ (ê = W_a(W_r h̄ + b_r) + b_a), so
one forward pass over the queries and a ridge fit on standardised h̄ give the whole readout in
closed form. The states at the 10 positions are ~97% shared across queries; standardising
exposes the small query-specific part that SGD struggles to find. The standardisation is folded
into the alignment layer, leaving the token rows and P = H untouched, so the adapter keeps the
format and shapes of the method and loads like any other.
"""
from __future__ import annotations

import numpy as np
import torch

from ..models.adapter import GenAdapter
from .evaluate import heldout_metrics


def mean_states(encoder, queries: list[str], instruction: str | None = None, report=None) -> np.ndarray:
    """h̄ for every query: mean over the 10 positions of the last-layer states, (n, d) float64."""
    out = np.zeros((len(queries), encoder.backbone.hidden_size), dtype=np.float64)
    step = encoder.batch_size * 8
    for start in range(0, len(queries), step):
        out[start:start + step] = encoder.mean_states(queries[start:start + step], instruction)
        if report:
            report(min(start + step, len(queries)), len(queries))
    return out


def ridge(features: np.ndarray, targets: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(B, c, mu, sigma) minimising |B·z + c - y|² + lam·|B|² on z = (x - mu) / sigma."""
    mu, sigma = features.mean(0), features.std(0) + 1e-6
    z = (features - mu) / sigma
    y_mean = targets.mean(0)
    gram = z.T @ z + lam * np.eye(z.shape[1])
    weights = np.linalg.solve(gram, z.T @ (targets - y_mean)).T  # (d_T, d)
    return weights, y_mean, mu, sigma


def predict(features: np.ndarray, fit: tuple) -> np.ndarray:
    weights, y_mean, mu, sigma = fit
    return ((features - mu) / sigma) @ weights.T + y_mean


def fit_closed_form(adapter: GenAdapter, train_x: np.ndarray, train_y: np.ndarray, heldout_x: np.ndarray,
                    heldout_y: np.ndarray, lambdas=(1.0, 10.0, 100.0, 1000.0, 10000.0)) -> dict:
    """Choose lambda by held-out top-1 (then cosine), fit, and write the map into the adapter in place."""
    trials = []
    for lam in lambdas:
        fit = ridge(train_x, train_y, lam)
        trials.append((lam, fit, heldout_metrics(predict(heldout_x, fit), heldout_y, train_y.mean(0))))
    lam, fit, metrics = max(trials, key=lambda t: (t[2]["top1"], t[2]["cosine"]))
    weights, y_mean, mu, sigma = fit
    with torch.no_grad():
        adapter.recon.weight.copy_(torch.eye(adapter.recon.in_features))
        adapter.recon.bias.zero_()
        folded = weights / sigma  # B·diag(1/σ): the standardisation folded into W_align
        adapter.align.weight.copy_(torch.from_numpy(folded).float())
        adapter.align.bias.copy_(torch.from_numpy(y_mean - folded @ mu).float())
    return {"lambda": lam, "heldout": metrics,
            "sweep": [{"lambda": l, **{k: m[k] for k in ("cosine", "top1", "centred_cosine")}} for l, _, m in trials]}
