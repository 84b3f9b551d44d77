"""The harmful-query probe: a standardised logistic regression on query-time features.

A feature set is one or more of what a search computes in its forward passes: `states` (the mean
last-layer state at the 10 adapter positions, where the LLM is about to answer), `gen` (the
response embedding read out of those states) and `teacher` (the teacher's plain query embedding),
joined with "+". Each block is standardised with the fitting data's mean and spread, stored with
the weights, so a probe is self-contained. Which set (and which L2 strength) is chosen by
measurement on a validation split of the fitting data, never on an evaluation set (see fit.py).
The threshold is a separate, replaceable part: calibrate.py sets it for a stated false-flag rate.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_text

BLOCKS = ("states", "gen", "teacher")
PROBE_FILE = "safety.json"
LEGACY = {"both": "gen+teacher"}  # probes fitted before the states feature existed


def blocks(features: str) -> list[str]:
    names = LEGACY.get(features, features).split("+")
    if not names or any(n not in BLOCKS for n in names):
        raise ValueError(f"unknown safety features {features!r}: use {', '.join(BLOCKS)} joined by '+'")
    return names


def stack(features: str, values: dict[str, np.ndarray]) -> np.ndarray:
    """The probe's input: the named blocks side by side, (n, total width) float64."""
    return np.concatenate([np.asarray(values[name], dtype=np.float64) for name in blocks(features)], axis=1)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(z, -60, 60)))


@dataclass
class SafetyProbe:
    features: str
    weights: list[float]
    bias: float
    threshold: float
    calibration: dict  # how the threshold in force was set (fit-time or a user calibration file)
    mean: list[float] | None = None  # standardisation; None: raw features (legacy probes)
    scale: list[float] | None = None
    fit: dict = field(default_factory=dict)  # the fitting report: data, choice, validation figures

    @property
    def needs(self) -> list[str]:
        return blocks(self.features)

    def scores(self, values: dict[str, np.ndarray]) -> np.ndarray:
        x = stack(self.features, values)
        if self.mean is not None:
            x = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return sigmoid(x @ np.asarray(self.weights) + self.bias)

    def flags(self, values: dict[str, np.ndarray]) -> np.ndarray:
        return self.scores(values) >= self.threshold

    @property
    def fingerprint(self) -> str:
        """The probe's identity without its threshold: a user calibration names the probe it was made for."""
        body = json.dumps([LEGACY.get(self.features, self.features), self.weights, self.bias, self.mean, self.scale])
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def save(self, folder: Path) -> None:
        write_json_atomic(Path(folder) / PROBE_FILE, asdict(self))

    @classmethod
    def load(cls, folder: Path | str | None) -> "SafetyProbe | None":
        """The probe in `folder`/safety.json with its fit-time threshold (see calibrate.load_probe for user calibration)."""
        path = Path(folder) / PROBE_FILE if folder else None
        if not path or not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def write_json_atomic(path: Path, data: dict) -> None:
    """A reader sees the old or the new file, never half (search may read it while it is rewritten)."""
    write_text(path, json.dumps(data, indent=1, default=float))


def fit_logistic(x: np.ndarray, y: np.ndarray, weights: np.ndarray, l2: float = 1e-3,
                 steps: int = 200) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression with per-example weights (LBFGS, full batch)."""
    import torch  # here, not at the top: search imports this module and keyword search needs no torch

    xt, yt = torch.from_numpy(np.ascontiguousarray(x)).double(), torch.from_numpy(y.astype(np.float64))
    balance = torch.from_numpy(weights.astype(np.float64))
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


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    scores = np.concatenate([positive, negative])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # tied scores share their average rank
    return float((ranks[:len(positive)].sum() - len(positive) * (len(positive) + 1) / 2) / (len(positive) * len(negative)))


def standardised_probe(features: str, values: dict[str, np.ndarray], harmful: np.ndarray, weights: np.ndarray,
                       l2: float) -> SafetyProbe:
    """A probe fitted on these rows (threshold 0.5 until calibrated)."""
    x = stack(features, values)
    mean, scale = x.mean(0), x.std(0) + 1e-6
    w, b = fit_logistic((x - mean) / scale, harmful, weights, l2)
    return SafetyProbe(features, w.tolist(), b, 0.5, {"source": "uncalibrated"}, mean.tolist(), scale.tolist(),
                       {"l2": l2})
