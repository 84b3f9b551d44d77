"""Held-out metrics for a student embedding against the teacher's embedding of each own response.

Mean cosine alone misleads: a student that predicts the average response scores a fair cosine
and retrieves nothing. Top-1 (is a query's own response its nearest among all held-out
responses?) and the centred cosine (both sides minus the training mean) expose that.
"""
from __future__ import annotations

import numpy as np


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def heldout_metrics(student: np.ndarray, target: np.ndarray, train_mean: np.ndarray | None = None) -> dict:
    student, target = normalise(student), normalise(target)
    similarity = student @ target.T
    metrics = {
        "cosine": float(np.mean(np.sum(student * target, axis=1))),
        "top1": float(np.mean(similarity.argmax(axis=1) == np.arange(len(student)))),
        "n": len(student),
    }
    if train_mean is not None:
        metrics["centred_cosine"] = float(np.mean(np.sum(normalise(student - train_mean) * normalise(target - train_mean), axis=1)))
    return metrics
