"""The retrieval systems the benchmark compares, over one corpus, with encodings cached per encoder.

A `Workspace` holds the documents and encodes them at most once per document space (teacher,
gen, backbone), so teacher, gen_doc_teacher and hybrid share one teacher matrix. Each system
maps query texts to a (queries x docs) score matrix, except BM25, RRF and `search:MODE`, which
rank directly. Query vectors come from genretrieve.query_vectors, the code `genretrieve search`
runs, with the config's hybrid weight and the encoder's configured instructions.
`hybrid@0.3` is hybrid at weight 0.3, so one run can sweep weights on one set of query vectors;
`X+filter` is system X behind the adapter's safety probe: a flagged query retrieves nothing, as
with `search --safety block`. `oracle` is not a system one would run but the ceiling of the
method: the teacher's embedding of the backbone's own answer, i.e. the training target itself,
with answers generated as training does and read from the same response cache. Every gen-based
system has an oracle twin (`rank(..., student=False)`): the same system with the oracle's vector
in place of the response embedding, so hybrid and RRF are measured against their own ceilings.
Search here is exact (a matrix product over whole documents), except `search:teacher`,
`search:gen` and `search:hybrid[@W]`: the product itself (indexed.py: chunks, float16, FAISS),
reported beside the exact systems so that the gap between the two is measured.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..config import Config, load_config
from ..errors import UsageError
from ..index.vectors import best_k
from ..models.assets import home
from ..models.batching import length_sorted_batches
from ..query_vectors import MODE_BLOCKS, encode, hyde, mode_vector, oracle
from ..query_vectors import hyde_answers as hyde_answers_now
from ..train.responses import ResponseCache, ensure_responses

PRODUCT = "search:"  # search:MODE is `genretrieve index` + `genretrieve search --mode MODE` (indexed.py)
PRODUCT_SYSTEMS = tuple(f"{PRODUCT}{mode}" for mode in ("teacher", "gen", "hybrid"))
SYSTEMS = ("bm25", "teacher", "gen_doc_teacher", "gen_doc_gen", "hybrid", "rrf_bm25_teacher", "rrf_bm25_gen",
           "hyde", "backbone_mean", "oracle", *PRODUCT_SYSTEMS)
DOC_SPACE = {"teacher": "teacher", "gen_doc_teacher": "teacher", "hybrid": "teacher", "gen_doc_gen": "gen",
             "hyde": "teacher", "backbone_mean": "backbone", "bm25": "bm25", "rrf_bm25_teacher": "teacher",
             "rrf_bm25_gen": "teacher", "oracle": "teacher", **{name: "index" for name in PRODUCT_SYSTEMS}}
# the systems whose query side is the student's response embedding: each is reported as a share of the oracle
GEN_BASED = ("gen_doc_teacher", "gen_doc_gen", "hybrid", "rrf_bm25_gen")


FILTER = "+filter"


def split_system(name: str) -> tuple[str, float | None]:
    """("hybrid", 0.3) for "hybrid@0.3" (and "hybrid@0.3+filter"); (name, None) for a system without weight."""
    base, _, weight = name.removesuffix(FILTER).partition("@")
    if not weight:
        return base, None
    try:
        w = float(weight)
    except ValueError:
        w = None
    if base not in ("hybrid", f"{PRODUCT}hybrid") or w is None or not 0.0 <= w <= 1.0:
        raise ValueError(f"{name!r}: only hybrid takes a weight, hybrid@W with W in [0, 1]")
    return base, w


def check_systems(names: Sequence[str], known: Sequence[str]) -> None:
    def base(name: str) -> str | None:
        try:
            return split_system(name)[0]
        except ValueError:
            return None

    if unknown := [name for name in names if base(name) not in known]:
        raise UsageError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(known)} (hybrid@W: hybrid at "
                         "weight W; search:MODE: the product's index and search; X+filter: X behind the safety probe)")


def blocked(ranked: list[list], flags: np.ndarray) -> list[list]:
    """A flagged query retrieves nothing."""
    return [[] if flag else row for row, flag in zip(ranked, flags)]


@torch.inference_mode()
def backbone_mean(encoder, texts: Sequence[str]) -> np.ndarray:
    """Masked mean of the bare backbone's last hidden states (no adapter, no instruction), L2-normalised."""
    tok, model = encoder.backbone.tokenizer, encoder.backbone.model
    ids = tok(list(texts), truncation=True, max_length=encoder.max_length)["input_ids"]
    out = np.zeros((len(ids), encoder.backbone.hidden_size), dtype=np.float32)
    for idx in length_sorted_batches([len(r) for r in ids], encoder.batch_size):
        batch = tok.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt").to(model.device)
        mask = batch["attention_mask"]
        # positions from the first real token: a left-padded row then encodes as it would alone
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        hidden = model.base_model(**batch, position_ids=positions).last_hidden_state.float()
        pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        out[idx] = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
    return out


def top_k(scores: np.ndarray, k: int) -> list[list[int]]:
    """Indices of the k best scores per row, best first (ties broken by document order), as the index's exact search ranks."""
    return best_k(scores, np.arange(scores.shape[1]), min(k, scores.shape[1]))[1].tolist()


def rrf(runs: Sequence[Sequence[Sequence]], k: int = 100, c: int = 60) -> list[list]:
    """Reciprocal rank fusion of several runs over the same queries: score = sum 1 / (c + rank)."""
    fused = []
    for per_query in zip(*runs):
        scores: dict = {}
        for ranking in per_query:
            for rank, doc in enumerate(ranking, start=1):
                scores[doc] = scores.get(doc, 0.0) + 1.0 / (c + rank)
        fused.append(sorted(scores, key=lambda d: (-scores[d], str(d)))[:k])
    return fused


class Workspace:
    """One corpus and one encoder: document matrices cached per space, systems that rank queries.

    The config gives what search would use: the hybrid weight (`search.hybrid_weight`), the index
    settings for `search:MODE`, and the oracle's generation settings (training's). HyDE's answers
    come from `hyde_answers` (default: the backbone writes them now; the safety bench reads a cache)."""

    def __init__(self, encoder, doc_texts: Sequence[str], config: Config | None = None, k: int = 100,
                 hyde_answers: Callable[[list[str]], list[str]] | None = None):
        self.config = config if config is not None else load_config()
        self.encoder, self.docs, self.w, self.k = encoder, list(doc_texts), self.config.search.hybrid_weight, k
        self.hyde_answers = hyde_answers or (lambda texts: hyde_answers_now(encoder.backbone, texts))
        self.oracle_stats: dict = {}
        self.doc_matrices: dict[str, np.ndarray] = {}
        self.doc_seconds: dict[str, float] = {}
        self._bm25 = None
        self._indexed = None
        self._queries: dict[tuple, np.ndarray] = {}  # hybrid's teacher and gen query vectors, shared across weights
        self._oracle: dict[tuple, np.ndarray] = {}

    def doc_matrix(self, space: str) -> np.ndarray:
        if space not in self.doc_matrices:
            encode_docs = {"teacher": lambda t: self.encoder.teacher.encode(t),
                           "gen": lambda t: self.encoder.encode_documents(t),
                           "backbone": lambda t: backbone_mean(self.encoder, t)}[space]
            start = time.perf_counter()
            self.doc_matrices[space] = encode_docs(self.docs)
            self.doc_seconds[space] = time.perf_counter() - start
        return self.doc_matrices[space]

    def prepare(self, space: str) -> None:
        """Encode (or index) the documents of a space ahead of the queries, so their time is counted apart."""
        if space == "index":
            self.indexed()
        elif space != "bm25":
            self.doc_matrix(space)

    def bm25(self):
        if self._bm25 is None:
            import bm25s

            start = time.perf_counter()
            self._bm25 = bm25s.BM25()
            self._bm25.index(bm25s.tokenize(self.docs, stopwords="en", show_progress=False), show_progress=False)
            self.doc_seconds["bm25"] = time.perf_counter() - start
        return self._bm25

    def indexed(self):
        """The documents indexed as `genretrieve index` would (indexed.py), built on first use."""
        if self._indexed is None:
            from .indexed import IndexedCorpus

            start = time.perf_counter()
            self._indexed = IndexedCorpus(self.encoder, self.docs, self.config)
            self.doc_seconds["index"] = time.perf_counter() - start
        return self._indexed

    def close(self) -> None:
        """Remove the temporary index of the search:MODE systems, if one was built."""
        if self._indexed is not None:
            self._indexed.close()
            self._indexed = None

    def oracle_queries(self, texts: list[str]) -> np.ndarray:
        """The oracle's query vectors, kept for the run (the latency loop's clearing does not touch them).
        Answers come from (and go to) the training response cache, with the training settings."""
        key = tuple(texts)
        if key not in self._oracle:
            train = self.config.train
            answers, generation = ensure_responses(self.encoder, texts, ResponseCache(home() / "responses.sqlite"),
                                                   train.max_new_tokens, train.gen_batch_size)
            for name in ("cached", "generated", "tokens", "seconds"):
                self.oracle_stats[name] = self.oracle_stats.get(name, 0) + generation[name]
            self._oracle[key] = oracle(self.encoder, answers)
        return self._oracle[key]

    def _kept(self, block: str, texts: list[str]) -> np.ndarray:
        """A query block (teacher, gen or oracle) kept for this run, so a weight sweep encodes the queries once."""
        if (block, *texts) not in self._queries:
            self._queries[(block, *texts)] = (self.oracle_queries(texts) if block == "oracle"
                                              else encode(self.encoder, texts, [block])[block])
        return self._queries[(block, *texts)]

    def dense(self, system: str, texts: list[str], student: bool = True) -> np.ndarray:
        """(queries x docs) cosine scores of a dense system. With student=False a gen-based system becomes
        its oracle twin: the oracle's vector stands in for the response embedding, all else equal."""
        enc = self.encoder
        base, weight = split_system(system)
        if base == "hybrid":
            blocks = {"teacher": self._kept("teacher", texts), "gen": self._kept("gen" if student else "oracle", texts)}
            return mode_vector(blocks, "hybrid", self.w if weight is None else weight) @ self.doc_matrix("teacher").T
        if not student and base in ("gen_doc_teacher", "gen_doc_gen"):
            base = "oracle"  # the ceiling of a student is the teacher's embedding of the answer, in teacher space

        def as_search(mode: str) -> Callable[[list[str]], np.ndarray]:
            return lambda t: mode_vector(encode(enc, t, MODE_BLOCKS[mode]), mode, self.w)

        query: Callable[[list[str]], np.ndarray] = {
            "teacher": as_search("teacher"), "gen_doc_teacher": as_search("gen"), "gen_doc_gen": as_search("gen"),
            "hyde": lambda t: hyde(enc, t, self.hyde_answers(t)), "backbone_mean": lambda t: backbone_mean(enc, t),
            "oracle": self.oracle_queries,
        }[base]
        return query(texts) @ self.doc_matrix(DOC_SPACE[base]).T

    def rank(self, system: str, texts: list[str], student: bool = True) -> list[list[int]]:
        """Top-k document indices per query, best first (student=False: the oracle twin, see `dense`)."""
        base, weight = split_system(system)
        if base not in SYSTEMS:
            raise ValueError(f"unknown system {system!r}; choose from {', '.join(SYSTEMS)}")
        if base.startswith(PRODUCT):
            return self.indexed().rank(texts, base.removeprefix(PRODUCT), self.k, self.w if weight is None else weight)
        if system == "bm25":
            import bm25s

            retriever = self.bm25()
            tokens = bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)
            docs, _ = retriever.retrieve(tokens, k=min(self.k, len(self.docs)), show_progress=False)
            return docs.tolist()
        if system.startswith("rrf_bm25_"):  # keyword + dense rank fusion (search's hybrid before the vector mix)
            dense = "teacher" if system == "rrf_bm25_teacher" else "gen_doc_teacher"
            return rrf([self.rank("bm25", texts), self.rank(dense, texts, student)], k=self.k)
        return top_k(self.dense(system, texts, student), self.k)

    def latency_ms(self, system: str, texts: list[str], also: Callable[[list[str]], object] | None = None) -> float:
        """Median ms per single query (encode + search, plus `also`, e.g. the safety probe), documents
        already encoded, after one warm-up."""
        self.rank(system, texts[:1])
        times = []
        for text in texts:
            self._queries.clear()  # a timed query is encoded, not read from the cache
            start = time.perf_counter()
            if also:
                also([text])
            self.rank(system, [text])
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times) if times else float("nan")
