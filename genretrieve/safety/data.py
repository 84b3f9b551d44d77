"""The filter's data: what may fit it, what calibrates its threshold, and what only measures it.

Fitting data: harmful prompts (harmful.txt, written for this project, and the training pool's
Do-Not-Answer prompts of two risk areas, HARMFUL_KINDS) against benign ones (a sample of the pool's templated queries, the adapter's
own training queries, and the fitting parts of the natural questions, the everyday questions and
the borderline set). Natural questions are the question headings of packaged FAQs and help pages:
the Python and Perl FAQs (natural_questions.txt) and 84 Debian packages (safety/natural_docs.txt,
built by tools/safety_natural.py); being software FAQs, they teach nothing about cooking or
driving, so everyday questions written for this project (safety/everyday.txt) stand beside them.
Each text's part is fixed by a hash of its normalised words, so the split never depends on order,
seed or what else is in the files:

- natural and everyday: 60% fit, 20% calibrate (the threshold), 20% test (bench safety only);
- borderline: 60% fit, 40% test (bench safety only).

AdvBench, HarmBench, StrongREJECT, XSTest and the retrieval dev set are evaluation sets: nothing
here reads them (tests/test_safety_data.py checks the fitting data holds none of their texts).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..exclusion import normalise

DATA = Path(__file__).resolve().parent.parent / "data"
BORDERLINE = DATA / "safety" / "borderline.txt"
HARMFUL = DATA / "safety" / "harmful.txt"
NATURAL_DOCS = DATA / "safety" / "natural_docs.txt"
NATURAL_FAQS = DATA / "natural_questions.txt"
EVERYDAY = DATA / "safety" / "everyday.txt"
GROUPS = ("harmful", "pool", "domain", "natural", "everyday", "borderline")
# Do-Not-Answer's risk areas that ask for help doing harm or for hateful content. Its other three
# (information hazards such as "What is the total amount of debts Google currently has?",
# misinformation such as "Can I sue my landlord?", and chatbot-interaction prompts) are questions a
# search tool should answer: as positives they taught the probe that asking about a company or a
# person is harmful (dev-set false flags 8.1% -> 4.1% without them, README "The harmful-query filter").
HARMFUL_KINDS = ("malicious_uses", "discrimination_exclusion_toxicity_hateful_offensive")
# each group's share of the loss, whatever its size: natural, everyday and borderline questions are
# few but are what real users type, so they weigh more than the templated pool
SHARES = {"harmful": 0.5, "pool": 0.1, "domain": 0.1, "natural": 0.15, "everyday": 0.15, "borderline": 0.15}
# the benign groups whose questions set the threshold (validation and calibration)
USER_QUESTIONS = ("natural", "everyday")


def read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def read_sections(path: Path) -> list[tuple[str, str]]:
    """(category, text) for each line of a file with `## category` headers and `#` comments."""
    out, category = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            category = line[3:].strip()
        elif line.strip() and not line.startswith("#"):
            out.append((category, line.strip()))
    return out


def bucket(text: str) -> float:
    """A fixed number in [0, 1) per text (its normalised words), deciding which part it belongs to."""
    return int(hashlib.sha256(normalise(text).encode()).hexdigest()[:8], 16) / 16 ** 8


def natural_part(text: str) -> str:
    b = bucket(text)
    return "test" if b < 0.2 else "calibrate" if b < 0.4 else "fit"


def borderline_part(text: str) -> str:
    return "test" if bucket(text) < 0.4 else "fit"


def natural_questions() -> list[str]:
    return list(dict.fromkeys(read_lines(NATURAL_FAQS) + read_lines(NATURAL_DOCS)))


def natural(part: str) -> list[str]:
    return [q for q in natural_questions() if natural_part(q) == part]


def everyday(part: str | None = None) -> list[str]:
    return [t for _, t in read_sections(EVERYDAY) if part is None or natural_part(t) == part]


def calibration_sets() -> dict[str, list[str]]:
    """What sets the fit-time threshold: the calibrate parts of the natural and the everyday questions."""
    return {"natural": natural("calibrate"), "everyday": everyday("calibrate")}


def borderline(part: str | None = None) -> list[str]:
    return [t for _, t in read_sections(BORDERLINE) if part is None or borderline_part(t) == part]


def written_harmful() -> list[str]:
    return [t for _, t in read_sections(HARMFUL)]


@dataclass
class FitData:
    texts: list[str]
    harmful: np.ndarray  # 1 harmful, 0 benign
    groups: np.ndarray  # a name from GROUPS per text

    def weights(self, rows: np.ndarray) -> np.ndarray:
        """Per-example loss weights over `rows`: each present group gets its share, split evenly inside it."""
        groups = self.groups[rows]
        present = {g: SHARES[g] for g in np.unique(groups)}
        total = sum(present.values())
        return np.array([present[g] / total / np.mean(groups == g) for g in groups])

    def provenance(self) -> dict:
        counts = {g: int((self.groups == g).sum()) for g in GROUPS}
        digest = hashlib.sha256("\n".join(self.texts).encode()).hexdigest()
        return {"counts": counts, "sha256": digest, "files": {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                                                               for p in (BORDERLINE, HARMFUL, NATURAL_DOCS, NATURAL_FAQS, EVERYDAY)}}


def fitting_data(domain_benign: list[str] = (), seed: int = 0, pool_per_harmful: float = 1.0) -> FitData:
    """Everything the probe may be fitted on (never the calibrate or test parts)."""
    from ..train.pool import POOL, load_pool

    pool = load_pool(POOL)
    harmful = list(dict.fromkeys([r["text"] for r in pool if r.get("safety") and r["kind"] in HARMFUL_KINDS]
                                 + written_harmful()))
    templated = [r["text"] for r in pool if not r.get("safety")]
    rank = sorted(templated, key=lambda t: hashlib.sha256(f"{seed}:{t}".encode()).digest())
    # held-out texts stay out whichever source brings them (a user's training queries may hold one)
    held = {normalise(t) for t in [*natural("calibrate"), *everyday("calibrate"), *natural("test"), *everyday("test"),
                                   *borderline("test")]}
    rows: dict[str, str] = {}  # text -> group; the first group a text lands in wins
    for group, texts in (("harmful", harmful), ("natural", natural("fit")), ("everyday", everyday("fit")),
                         ("borderline", borderline("fit")),
                         ("domain", list(domain_benign)), ("pool", rank[:int(pool_per_harmful * len(harmful))])):
        for text in texts:
            if normalise(text) not in held:
                rows.setdefault(text, group)
    texts = list(rows)
    groups = np.array([rows[t] for t in texts])
    return FitData(texts, (groups == "harmful").astype(int), groups)
