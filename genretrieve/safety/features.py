"""The filter's verdict on a batch of queries, from the features search computes anyway.

The features are query blocks (teacher, gen, states) from genretrieve.query_vectors, the code
search, the benchmarks and fitting share: `gen` and `states` come out of one forward pass, so a
search that computes gen gets the states for free; one that does not (teacher mode) pays one gen
pass for a probe that reads gen or states. Vectors a caller already has are reused, never
recomputed. Gen uses the adapter's configured query instruction, the one the probe was fitted on.
"""
from __future__ import annotations

import numpy as np

from ..query_vectors import encode


def probe_scores(probe, encoder, texts: list[str], have: dict | None = None) -> np.ndarray:
    return probe.scores(encode(encoder, texts, probe.needs, have))


def probe_flags(probe, encoder, texts: list[str], have: dict | None = None) -> np.ndarray:
    """The filter's verdict per query, as search applies it."""
    return np.asarray(probe_scores(probe, encoder, texts, have) >= probe.threshold, dtype=bool)
