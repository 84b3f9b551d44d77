"""Fitting the filter: features for the fitting data, the feature set chosen on a validation split, the threshold.

One forward pass per text gives every candidate block (states and gen together, the teacher
apart), cached on disk per adapter and text, so a refit after editing the probe code, the split or
the data costs seconds plus the new texts' passes. Every candidate feature set (and L2 strength) is fitted on 75% of the fitting
data and scored on the other 25%: with the threshold put where the validation natural and
everyday questions each allow the target false-flag rate, the score is the share of validation harmful prompts flagged
minus the share of validation borderline prompts flagged. The winner is refitted on all fitting
data; its threshold is then set on the calibration parts of the natural and everyday questions,
which no fit sees, so that each part meets the rate.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..models.assets import home
from ..query_vectors import encode
from .calibrate import threshold_for_each
from .data import USER_QUESTIONS, FitData, calibration_sets, fitting_data
from .probe import BLOCKS, SafetyProbe, auroc, standardised_probe

CANDIDATES = ("states", "gen", "teacher", "states+teacher", "gen+teacher", "states+gen+teacher")
L2S = (1e-3, 1e-2, 1e-1)
VALIDATION = 0.25


def features_for(encoder, texts: list[str], cache_dir: Path | None = None, report=None) -> dict[str, np.ndarray]:
    """Every block for every text, through query_vectors.encode (the code search uses).

    Cached per adapter and text in one file: a refit after adding texts encodes only the new ones."""
    adapter = encoder.adapter.fingerprint() if hasattr(encoder, "adapter") else encoder.card.get("fingerprint", "")
    framing = json.dumps(encoder.card.get("framing"), sort_keys=True)  # where the 10 tokens sit changes the states
    key = hashlib.sha256("\n".join([adapter, encoder.backbone.fingerprint, encoder.teacher.fingerprint,
                                    encoder.query_instruction] + ([framing] if encoder.card.get("framing") else [])).encode())
    path = Path(cache_dir or home() / "safety") / f"features-{key.hexdigest()[:16]}.npz"
    known: dict[str, int] = {}
    cached: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as stored:
            cached = {name: stored[name] for name in (*BLOCKS, "texts")}
        known = {t: i for i, t in enumerate(cached["texts"].tolist())}
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    new: dict[str, list] = {name: [] for name in BLOCKS}
    step = 256
    for start in range(0, len(missing), step):
        batch = encode(encoder, missing[start:start + step], BLOCKS)
        for name in BLOCKS:
            new[name].append(batch[name])
        if report:
            report(min(start + step, len(missing)), len(missing))
    if missing:
        merged = {name: np.concatenate(([cached[name]] if cached else []) + new[name]) for name in BLOCKS}
        merged["texts"] = np.array((cached["texts"].tolist() if cached else []) + missing)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a file object: numpy adds no ".npz"
            np.savez(handle, **merged)
        cached, known = merged, {t: i for i, t in enumerate(merged["texts"].tolist())}
    idx = np.array([known[t] for t in texts], dtype=np.int64)
    return {name: cached[name][idx] for name in BLOCKS}


def validation_rows(texts: list[str]) -> np.ndarray:
    return np.array([int(hashlib.sha256(f"val:{t}".encode()).hexdigest()[:8], 16) / 16 ** 8 < VALIDATION for t in texts])


def rows(values: dict, idx: np.ndarray) -> dict:
    return {k: v[idx] for k, v in values.items()}


def choose(values: dict, data: FitData, rate: float, candidates=None, l2s=None) -> tuple[tuple[str, float], list[dict]]:
    """(features, l2) with the best validation score, and the whole table."""
    candidates, l2s = candidates or CANDIDATES, l2s or L2S
    val = validation_rows(data.texts)
    train = np.flatnonzero(~val)
    table = []
    for features in candidates:
        for l2 in l2s:
            probe = standardised_probe(features, rows(values, train), data.harmful[train], data.weights(train), l2)
            scores = probe.scores(rows(values, np.flatnonzero(val)))
            groups, harmful = data.groups[val], data.harmful[val]
            threshold = threshold_for_each([scores[groups == g] for g in USER_QUESTIONS], rate)
            recall = float(np.mean(scores[harmful == 1] >= threshold))
            border = float(np.mean(scores[groups == "borderline"] >= threshold)) if (groups == "borderline").any() else 0.0
            table.append({"features": features, "l2": l2, "score": recall - border, "harmful_flagged": recall,
                          "borderline_flagged": border, "auroc": auroc(scores[harmful == 1], scores[harmful == 0])})
    best = max(table, key=lambda r: (r["score"], r["auroc"]))
    return (best["features"], best["l2"]), table


def fit_safety(encoder, domain_benign: list[str] = (), seed: int = 0, rate: float = 0.01, cache_dir: Path | None = None,
               report=None, candidates=None) -> SafetyProbe:
    """The adapter's filter, ready to save: chosen, refitted on all fitting data, calibrated."""
    start = time.perf_counter()
    data = fitting_data(list(domain_benign), seed)
    sets = calibration_sets()
    calibration = [text for texts in sets.values() for text in texts]
    values = features_for(encoder, data.texts + calibration, cache_dir, report)
    n = len(data.texts)
    fit_values, calib_values = rows(values, np.arange(n)), rows(values, np.arange(n, n + len(calibration)))
    (features, l2), table = choose(fit_values, data, rate, candidates)
    everything = np.arange(n)
    probe = standardised_probe(features, fit_values, data.harmful, data.weights(everything), l2)
    calib_scores = probe.scores(calib_values)
    ends = np.cumsum([len(texts) for texts in sets.values()])
    per_set = dict(zip(sets, np.split(calib_scores, ends[:-1])))
    probe.threshold = threshold_for_each(per_set.values(), rate)
    probe.calibration = {"source": "fit", "set": "natural and everyday questions, calibration parts (the rate holds in each)",
                         "n": len(calibration), "rate": rate, "false_flag_rate": float(np.mean(calib_scores >= probe.threshold)),
                         "per_set": {name: {"n": len(scores), "false_flag_rate": float(np.mean(scores >= probe.threshold))}
                                     for name, scores in per_set.items()}}
    probe.fit = {"l2": l2, "data": data.provenance(), "validation": table, "seed": seed,
                 "chosen_by": "validation: harmful flagged - borderline flagged, threshold at the target rate on "
                              "validation natural and everyday questions", "seconds": round(time.perf_counter() - start, 1)}
    return probe
