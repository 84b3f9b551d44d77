"""How a query becomes vectors: one implementation of each way, called by search and every benchmark.

Blocks (`encode`): `teacher`, the teacher's plain embedding of the query; `gen`, its response
embedding, with the encoder's configured query instruction and framing; `states`, the mean
last-layer state at the 10 adapter positions, from the same forward pass as gen (the safety probe
reads it). `encode` computes only the blocks a caller lacks, so the probe reuses what a search
computed. A search mode needs some blocks (`MODE_BLOCKS`) and ranks with one vector
(`mode_vector`): hybrid is (1 - w)·teacher + w·gen, and since both are unit vectors in the
teacher's space, a dot product with the mix is exactly the mix of the two cosines.
The benchmarks' other ways live here too, so each exists once: `hyde` (the query's teacher
embedding plus that of the backbone's answer) and `oracle` (the teacher's embedding of the
backbone's own answer, i.e. the training target). They take the answers as given; where the
answers come from (generated now, or read from a cache) is the caller's business.
Only numpy at import: teacher-mode search stays light.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

MODE_BLOCKS = {"teacher": ("teacher",), "gen": ("gen",), "hybrid": ("teacher", "gen"), "keyword": ()}
# how HyDE's answers are written: greedy, in the chat template (the generation cache keys on these)
HYDE = {"max_new_tokens": 128, "greedy": True, "chat": True}


def encode(encoder, texts: list[str], needs: Iterable[str], have: dict | None = None) -> dict[str, np.ndarray]:
    """{block: (n, width)} for each block in `needs` (teacher, gen, states), taking what `have` holds already."""
    values = {k: v for k, v in (have or {}).items() if v is not None}
    missing = [n for n in needs if n not in values]
    if "states" in missing:  # gen comes with the states, from the same pass
        values["gen"], values["states"] = encoder.encode_queries_with_states(texts)
    elif "gen" in missing:
        values["gen"] = encoder.encode_queries(texts)
    if "teacher" in missing:
        values["teacher"] = encoder.teacher.encode(texts)
    return values


def mix(teacher: np.ndarray, gen: np.ndarray, weight: float) -> np.ndarray:
    """The hybrid query: (1 - w)·teacher + w·gen."""
    return (1 - weight) * teacher + weight * gen


def mode_vector(vectors: dict[str, np.ndarray], mode: str, weight: float) -> np.ndarray:
    """The one vector a dense mode ranks with, from the blocks `encode` gave (`weight`: hybrid's w)."""
    if mode == "hybrid":
        return mix(vectors["teacher"], vectors["gen"], weight)
    return vectors[mode]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def hyde_answers(backbone, texts: Sequence[str]) -> list[str]:
    """The backbone's answers as HyDE writes them (`HYDE`), generated now."""
    from .models.generate import generate_answers

    return generate_answers(backbone, list(texts), HYDE["max_new_tokens"], chat=HYDE["chat"])


def hyde(encoder, texts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
    """HyDE: the teacher's embedding of the backbone's answer, averaged with the query's own."""
    vectors = encoder.teacher.encode(list(texts))
    # an empty answer (immediate end of turn) adds nothing rather than the embedding of no text
    if said := [i for i, a in enumerate(answers) if a.strip()]:
        vectors[said] += encoder.teacher.encode([answers[i] for i in said])
    return unit(vectors)


def oracle(encoder, answers: Sequence[str]) -> np.ndarray:
    """The teacher's embedding of the backbone's own answers: what training asks gen to produce."""
    return unit(encoder.teacher.encode(list(answers)))
