"""The threshold: set for a stated false-flag rate on benign queries, and replaceable by the user's own.

A probe's score does not transfer across domains as well as its ranking does, so the threshold is
kept apart from the weights: fitting sets it on held-out natural and everyday questions, and
`genretrieve calibrate-safety` re-sets it on the user's benign queries without refitting anything.
The user's calibration is a small JSON file beside the index (or the adapter) naming the probe it
was made for (its fingerprint); search applies the first matching file it finds (the index's
folder, then the adapter's) and says which calibration is in force.
"""
from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import numpy as np

from .probe import SafetyProbe, write_json_atomic

CALIBRATION_FILE = "safety-calibration.json"


def threshold_for(scores: np.ndarray, rate: float) -> float:
    """The lowest threshold that flags at most floor(rate·n) of these benign scores (flagged: score >= threshold)."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"the false-flag rate must be in [0, 1), not {rate}")
    ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    allowed = int(np.floor(rate * len(ordered) + 1e-9))
    return float(np.nextafter(ordered[allowed], np.inf))  # just above the first score that must pass


def threshold_for_each(score_sets, rate: float) -> float:
    """The lowest threshold that flags at most `rate` of every set: one kind of benign question (everyday
    questions, say) cannot spend the margin another kind (software FAQ headings) leaves, as one pooled
    quantile would let the larger set do."""
    return max(threshold_for(scores, rate) for scores in score_sets if len(scores))


def check_resolvable(n: int, rate: float) -> None:
    """Refuse a rate the queries cannot resolve: with n < 1/rate, the rate allows no flag at all, and the
    threshold would sit just above the user's highest-scoring query, a noisy and often far lower bar."""
    from ..errors import UsageError

    if rate > 0 and n * rate < 1:
        raise UsageError(f"{n} benign queries cannot resolve a {rate:.1%} false-flag rate: give at least "
                         f"{int(np.ceil(1 / rate))} queries, or a larger --rate")


def calibration_record(probe: SafetyProbe, scores: np.ndarray, rate: float, source: dict) -> dict:
    threshold = threshold_for(scores, rate)
    return {"probe": probe.fingerprint, "features": probe.features, "threshold": threshold, "rate": rate,
            "n": int(len(scores)), "false_flag_rate": float(np.mean(np.asarray(scores) >= threshold)),
            "previous_threshold": probe.threshold, "source": source,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def file_source(path: Path, texts: list[str]) -> dict:
    return {"kind": "user", "file": str(path), "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
            "queries": len(texts)}


def write_calibration(record: dict, folder: Path) -> Path:
    path = Path(folder) / CALIBRATION_FILE
    write_json_atomic(path, record)
    return path


def load_probe(adapter_dir: Path | str | None, index_dir: Path | str | None = None) -> SafetyProbe | None:
    """The adapter's probe with the calibration in force: a matching user file, else the fit-time one.

    `probe.calibration` then says which: {"source": ..., "file": ...}; a file made for another probe
    (the adapter was refitted) is ignored and named under "ignored"."""
    probe = SafetyProbe.load(adapter_dir)
    if probe is None:
        return None
    ignored = []
    for folder in (index_dir, adapter_dir):
        path = Path(folder) / CALIBRATION_FILE if folder else None
        if not path or not path.exists():
            continue
        record = json.loads(path.read_text())
        if record.get("probe") != probe.fingerprint:
            ignored.append(str(path))
            continue
        probe.threshold = float(record["threshold"])
        probe.calibration = {**record, "file": str(path)}
        break
    if ignored:
        probe.calibration = {**probe.calibration, "ignored": ignored,
                             "ignored_reason": "made for another probe (the adapter's safety.json changed)"}
    return probe


def describe(probe: SafetyProbe | None) -> str:
    """One line for `info` and messages: which features, which threshold, set on what."""
    if probe is None:
        return "none (the adapter has no safety.json: nothing is filtered)"
    c = probe.calibration
    where = (f"user calibration {c['file']} ({c['n']} queries, {c['rate']:.1%} false flags)" if c.get("file")
             else f"fit-time calibration on {c.get('set', 'benign queries')} ({c.get('rate', 0):.1%} false flags)"
             if "rate" in c else f"fit-time threshold ({c['target_false_flag_rate']:.1%} false flags)"
             if "target_false_flag_rate" in c else "threshold as fitted")
    stale = f"; ignored {', '.join(c['ignored'])} ({c['ignored_reason']})" if c.get("ignored") else ""
    return f"{probe.features} probe {probe.fingerprint}, threshold {probe.threshold:.4f}, {where}{stale}"


def calibrate_safety(encoder, texts: list[str], rate: float, out_dir: Path, source: dict,
                     index_dir: Path | None = None) -> dict:
    """Re-set the threshold of the adapter's probe on these benign queries and write it to out_dir."""
    from ..errors import GenretrieveError
    from .features import probe_scores

    check_resolvable(len(texts), rate)
    probe = SafetyProbe.load(encoder.card.get("path"))
    if probe is None:
        raise GenretrieveError("this adapter has no safety probe (safety.json) to calibrate; fit one: genretrieve fit-safety")
    record = calibration_record(probe, probe_scores(probe, encoder, texts), rate, source)
    record["path"] = str(write_calibration(record, out_dir))
    return record
