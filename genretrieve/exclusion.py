"""The near-duplicate check that keeps evaluation texts (AdvBench, the dev set, held-out parts) out of fitting data.

Lexical on normalised word sets, so it catches copies and light edits, not paraphrases. Used at
run time by the safety data (safety/data.py) and by the tests that check the shipped data, and by
the builders in tools/ that filter what they write.
"""
from __future__ import annotations

import re
from collections import defaultdict

_PUNCT = re.compile(r"[^\w\s]+")
JACCARD = 0.6      # word-set Jaccard at or above this is a near-duplicate
CONTAINMENT = 0.8  # ... or this share of a protected prompt's words appears in the query
MIN_CONTAIN = 5    # containment only counts for protected prompts of at least this many words


def normalise(text: str) -> str:
    """Lowercase, punctuation to spaces, whitespace collapsed."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def _words(text: str) -> frozenset[str]:
    return frozenset(normalise(text).split())


def _rule(shared: int, n_query: int, n_protected: int) -> bool:
    """The near-duplicate rule on word sets. Sets ignore order, so a reordered clause still
    matches; one changed or added word ("please") in a 6-25 word prompt keeps Jaccard >= 0.6
    (one swap in a 7-word prompt: 6/8 = 0.75); containment catches a protected prompt wrapped
    in extra text. Short generic questions share too few words with any prompt to trip it."""
    if not shared:
        return False
    if shared / (n_query + n_protected - shared) >= JACCARD:
        return True
    return n_protected >= MIN_CONTAIN and shared / n_protected >= CONTAINMENT


def near_duplicate(a: str, b: str) -> bool:
    """True when a and b are the same text up to case/punctuation, or a light edit of it (b protected)."""
    wa, wb = _words(a), _words(b)
    return normalise(a) == normalise(b) or _rule(len(wa & wb), len(wa), len(wb))


class ExclusionIndex:
    """Flags queries that copy or lightly edit any protected text (e.g. AdvBench).

    An inverted index from each word to the protected texts containing it gives, in one pass
    over the query's words, the shared-word count with every protected text; the rule needs
    only that count and the two set sizes, so the check is exact (no candidate pruning) and
    costs ~0.1 ms per query against 520 texts.
    """

    def __init__(self, texts: list[str]):
        self.texts = list(texts)
        self.exact = {normalise(t): t for t in self.texts}
        self.sizes = [len(_words(t)) for t in self.texts]
        self.postings: dict[str, list[int]] = defaultdict(list)
        for i, text in enumerate(self.texts):
            for word in _words(text):
                self.postings[word].append(i)

    def match(self, query: str) -> str | None:
        """The protected text the query duplicates, or None."""
        norm = normalise(query)
        if norm in self.exact:
            return self.exact[norm]
        words = set(norm.split())
        shared: dict[int, int] = defaultdict(int)
        for word in words:
            for i in self.postings.get(word, ()):
                shared[i] += 1
        for i, s in sorted(shared.items()):
            if _rule(s, len(words), self.sizes[i]):
                return self.texts[i]
        return None

    def hits(self, query: str) -> bool:
        return self.match(query) is not None
