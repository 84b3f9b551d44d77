"""Query -> ranked hits, in one of four modes, with path filtering applied before ranking.

`gen` ranks by the query's response embedding, `teacher` by the teacher's plain query embedding,
`keyword` by SQLite FTS5 BM25, and `hybrid` by (1 - w)·teacher + w·gen. Both embeddings live in
the teacher's space, so that fusion is one FAISS search with the mixed query vector. (Rank fusion
of gen and keyword, the first design, scored nDCG@10 0.380 against the teacher's 0.737 on the dev
set, see README.) Queries become vectors in genretrieve.query_vectors, the code every benchmark
calls too, in one batch, so bulk search costs one pass per batch. The safety filter reads its
features from the same passes: the adapter states come with gen, and only what the mode did not
compute is added.

A Searcher opens the index read-only and may live long while `genretrieve index` runs change it:
each search checks the manifest (rewritten at the end of every run, with the FAISS files derived
from SQLite; replaced by a --rebuild) and reopens the folder when it changed; FAISS hits are
joined to chunk rows by id, so a chunk deleted meanwhile is dropped instead of shifting the
others' scores.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .config import SAFETY_LEVELS, SEARCH_MODES, SearchConfig
from .errors import UsageError
from .index.folder import MANIFEST, IndexFolder, index_identity
from .query_vectors import MODE_BLOCKS, encode, mode_vector
from .safety import load_probe, probe_flags

MODES, SAFETY = SEARCH_MODES, SAFETY_LEVELS  # one list each, checked when the config loads
BLOCKED_REASON = "the query was judged harmful (--safety block)"


@dataclass
class Hit:
    rank: int
    score: float
    chunk_id: int
    path: str
    start_line: int | None
    end_line: int | None
    page: int | None
    heading: str | None
    text: str
    metadata: dict = field(default_factory=dict)
    flagged: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Result:
    query: str
    hits: list[Hit]
    flagged: bool = False  # the safety probe judged the query harmful
    blocked: bool = False  # ... and --safety block withheld the hits

    def to_dict(self) -> dict:
        """One query's outcome as `search --json` and `serve`'s /search give it; hits as Hit.to_dict()."""
        record = {"query": self.query, "flagged": self.flagged, "blocked": self.blocked,
                  "hits": [hit.to_dict() for hit in self.hits]}
        return {**record, "reason": BLOCKED_REASON} if self.blocked else record


def _stat(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return ()
    return st.st_ino, st.st_mtime_ns, st.st_size


class Searcher:
    """An open index plus the encoder that matches it; reuse it for many queries."""

    def __init__(self, index_dir: Path, encoder=None, config=None):
        self.index_dir, self.encoder, self.config = Path(index_dir), encoder, config
        self.folder = self._open()
        self._vectors = None
        # the adapter's probe, with a user calibration from the index folder (or the adapter's) in force
        self.probe = load_probe(encoder.card.get("path"), index_dir) if encoder is not None else None

    def _open(self) -> IndexFolder:
        folder = IndexFolder(self.index_dir, readonly=True)
        if self.encoder is not None:
            folder.check_encoder(index_identity(self.encoder, self.config))
        self._manifest_stat = _stat(self.index_dir / MANIFEST)
        return folder

    def refresh(self) -> None:
        """Notice a finished index run: the FAISS files are derived only at the end of a run, with the manifest
        rewritten, so a rewritten manifest reopens the folder (and FAISS); chunks committed meanwhile are joined by id."""
        if _stat(self.index_dir / MANIFEST) != self._manifest_stat:
            self.folder.close()
            self.folder, self._vectors = self._open(), None

    @property
    def vectors(self):
        if self._vectors is None:
            self._vectors = self.folder.vector_index()
        return self._vectors

    def query_vectors(self, queries: list[str], mode: str, states: bool = False) -> dict[str, np.ndarray]:
        """The embeddings a mode needs: {"gen": ...} and/or {"teacher": ...}; with `states`, the mean
        adapter-position states of the same forward pass as gen (for the safety probe)."""
        if self.encoder is None:
            raise UsageError(f"mode {mode!r} needs the models; keyword mode does not")
        needs = MODE_BLOCKS[mode]
        return encode(self.encoder, queries, needs + ("states",) if states and "gen" in needs else needs)

    def flags(self, queries: list[str], have: dict | None = None) -> np.ndarray:
        """The safety probe's verdict per query, computing only the features it needs and `have` lacks."""
        return probe_flags(self.probe, self.encoder, queries, have)

    def search(self, queries: list[str], k: int = 10, mode: str = "teacher", path_glob: str | None = None,
               safety: str = "off", hybrid_weight: float = SearchConfig.hybrid_weight) -> list[Result]:
        """Results for each query; `hybrid_weight` is w, the share of gen in hybrid mode."""
        if mode not in MODES:
            raise UsageError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
        if safety not in SAFETY:
            raise UsageError(f"--safety must be one of {', '.join(SAFETY)}, not {safety!r}")
        if mode in ("teacher", "hybrid") and self.encoder is not None and not self.encoder.teacher_space_matches:
            raise UsageError(f"--mode {mode} is refused with this adapter (imported from the paper): its vectors are not "
                             "in the loaded teacher's space; use --mode gen or keyword")
        if not 0.0 <= hybrid_weight <= 1.0:
            raise UsageError(f"the hybrid weight must be in [0, 1], not {hybrid_weight}")
        if k < 1:
            raise UsageError("-k must be at least 1")
        if any(not q.strip() for q in queries):
            raise UsageError("empty query")
        self.refresh()
        store = self.folder.store
        filtering = safety != "off" and self.probe is not None
        states = filtering and "states" in self.probe.needs
        vectors = self.query_vectors(queries, mode, states) if mode != "keyword" else {}
        flagged = self.flags(queries, vectors) if filtering else np.zeros(len(queries), dtype=bool)
        allowed = store.ids_matching_path(path_glob) if path_glob else None
        dense: list[list[tuple[int, float]]] = [[] for _ in queries]
        if mode != "keyword" and (allowed is None or allowed):
            query = mode_vector(vectors, mode, hybrid_weight)
            scores, ids = self.vectors.search(query.astype(np.float32), k,
                                              None if allowed is None else np.asarray(allowed, dtype=np.int64))
            dense = [[(int(i), float(s)) for s, i in zip(row_s, row_i) if i >= 0] for row_s, row_i in zip(scores, ids)]
        results = []
        for query, dense_hits, flag in zip(queries, dense, flagged):
            if safety == "block" and flag:
                results.append(Result(query, [], flagged=True, blocked=True))
                continue
            ranked = store.keyword_search(query, k, allowed) if mode == "keyword" else dense_hits
            rows = {row["id"]: row for row in store.get_chunks([chunk_id for chunk_id, _ in ranked])}
            # joined by id: a chunk deleted since FAISS was built is dropped, never paired with another's score
            found = [(score, rows[chunk_id]) for chunk_id, score in ranked if chunk_id in rows]
            hits = [Hit(rank, score, row["id"], row["path"], row["start_line"], row["end_line"], row["page"],
                        row["heading"], row["text"], row["metadata"], bool(flag))
                    for rank, (score, row) in enumerate(found, 1)]
            results.append(Result(query, hits, flagged=bool(flag)))
        return results
