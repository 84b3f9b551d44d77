"""The filter's inputs for a batch of queries, computed the one way search, benchmarks and fitting share.

`gen` and `states` come out of the same forward pass (GenEncoder.encode_queries_with_states), so a
search that computes gen gets the state for free; one that does not (teacher mode) pays one gen
pass for a probe that reads gen or states. Vectors a caller already has are reused, never
recomputed. Features use the adapter's default query instruction, the one the probe was fitted on.
"""
from __future__ import annotations

import numpy as np


def query_features(encoder, texts: list[str], needs, have: dict | None = None) -> dict[str, np.ndarray]:
    """{block: (n, width)} for each block in `needs`, taking what `have` holds already."""
    values = {k: v for k, v in (have or {}).items() if v is not None}
    missing = [n for n in needs if n not in values]
    if "states" in missing:
        values["gen"], values["states"] = encoder.encode_queries_with_states(texts)
    elif "gen" in missing:
        values["gen"] = encoder.encode_queries(texts)
    if "teacher" in missing:
        values["teacher"] = encoder.teacher.encode(texts)
    return values


def probe_scores(probe, encoder, texts: list[str], have: dict | None = None) -> np.ndarray:
    return probe.scores(query_features(encoder, texts, probe.needs, have))


def probe_flags(probe, encoder, texts: list[str], have: dict | None = None) -> np.ndarray:
    """The filter's verdict per query, as search applies it."""
    return np.asarray(probe_scores(probe, encoder, texts, have) >= probe.threshold, dtype=bool)
