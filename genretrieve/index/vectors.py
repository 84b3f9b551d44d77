"""The in-RAM FAISS index (flat, IVF or HNSW) over L2-normalised vectors, scored by inner product.

SQLite holds every vector (float16, the source of truth); this index is derived from them in one
build (`VectorIndex.build`) at the end of an index run, saved to `vectors.faiss`, and loaded by
search as it is: nothing here updates an index in place or rebuilds one on the read path. The
FAISS file stores the float16-rounded values, so its scores equal exact scores over the store.
Filtered searches that FAISS cannot answer well (a small allowed set, HNSW, the GPU) score the
allowed chunks exactly, over their vectors from `vectors_of` (the store, for a loaded index).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

from ..atomic import atomic_path

IVF_THRESHOLD = 50_000      # "auto": exact flat search is fast enough below this many vectors
EXACT_FILTER_MAX = 20_000   # filtered searches over at most this many vectors are brute force
KINDS = ("auto", "flat", "ivf", "hnsw")
_BLOCK = 65_536             # rows converted to float32 at a time in exact search (bounds memory)

# ids -> their float16 vectors, a NaN row for an id it does not hold (a chunk deleted since the build)
VectorSource = Callable[[np.ndarray], np.ndarray]


def default_nprobe(nlist: int) -> int:
    """nlist // 8, at least 8 (and at most nlist): see ivf_params."""
    return min(nlist, max(8, nlist // 8))


def ivf_params(n: int) -> tuple[int, int]:
    """(nlist, default nprobe) for ``n`` vectors.

    nlist = clamp(4*sqrt(n), 16, 65536) follows the FAISS wiki guideline (lists of ~sqrt(n)/4
    vectors balance coarse-quantizer cost against list scans), capped at n // 39 so k-means
    gets the 39 points per centroid FAISS asks for. nprobe = nlist // 8 (at least 8) scans
    ~12% of the lists: on real MiniLM embeddings of text, where sentence vectors overlap far more
    than synthetic clusters, nlist // 16 gave recall@10 0.76 with 2k vectors and 0.88 with 10k
    (`bench speed --sections faiss`), and nlist // 8 gave 0.988 with 100k (`--sections scale`,
    README). Raise nprobe (or choose HNSW) if recall matters more than speed.
    """
    nlist = min(max(int(4 * math.sqrt(n)), 16), 65536, max(1, n // 39))
    return nlist, default_nprobe(nlist)


def resolve_kind(kind: str, n: int) -> str:
    """The kind to build for n vectors: "auto" is flat below IVF_THRESHOLD, else ivf."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    return ("flat" if n < IVF_THRESHOLD else "ivf") if kind == "auto" else kind


def array_source(ids: np.ndarray, vectors: np.ndarray) -> VectorSource:
    """A VectorSource over vectors held in memory (an index built from arrays: the write path, tests, benches)."""
    order = np.argsort(ids, kind="stable")
    ids, vectors = ids[order], vectors[order]

    def vectors_of(wanted: np.ndarray) -> np.ndarray:
        at = np.clip(np.searchsorted(ids, wanted), 0, max(len(ids) - 1, 0))
        found = (at < len(ids)) & (ids[at] == wanted) if len(ids) else np.zeros(len(wanted), bool)
        out = np.full((len(wanted), vectors.shape[1]), np.nan, np.float16)
        out[found] = vectors[at[found]]
        return out
    return vectors_of


class VectorIndex:
    _gpu_res = None

    def __init__(self, index: faiss.Index, vectors_of: VectorSource, gpu: bool | None = None,
                 nprobe: int | None = None, ef_search: int = 128) -> None:
        self.index, self.vectors_of, self.gpu = index, vectors_of, gpu
        self.dim = int(index.d)
        self.kind = kind_of(index)
        self._gpu_index: faiss.Index | None = None
        # search settings are set here, not trusted from the file: files written before they were saved hold FAISS's
        # defaults (nprobe 1, efSearch 16)
        if self.kind == "ivf":
            ivf = faiss.extract_index_ivf(index)
            ivf.nprobe = min(ivf.nlist, nprobe or default_nprobe(ivf.nlist))
        elif self.kind == "hnsw":
            faiss.downcast_index(index.index).hnsw.efSearch = ef_search

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, kind: str = "auto", dim: int | None = None, *,
              nprobe: int | None = None, hnsw_m: int = 32, ef_search: int = 128,
              gpu: bool | None = None) -> "VectorIndex":
        """Build FAISS over all the vectors at once (nprobe: IVF's, default ivf_params'; ef_search: HNSW's)."""
        ids = np.asarray(ids, np.int64).ravel()
        v16 = np.asarray(vectors, np.float32).reshape(len(ids), dim or np.shape(vectors)[-1]).astype(np.float16)
        if len(np.unique(ids)) != len(ids) or (ids < 0).any():
            raise ValueError("need one vector per id, ids unique and >= 0 (-1 pads results)")
        n, d, kind = len(ids), v16.shape[1], resolve_kind(kind, len(ids))
        x = v16.astype(np.float32)  # the float16-rounded values: scores equal exact scores over the store
        if kind == "ivf" and n > 0:
            nlist, _ = ivf_params(n)
            # IVF stores ids natively; IndexIDMap2 around IVF corrupts ids on remove_ids.
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)  # seeded training sample: same data, same index
            index.train(x[np.sort(rng.choice(n, size=min(n, 256 * nlist), replace=False))])
        elif kind == "hnsw":
            base = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = max(40, 2 * hnsw_m)
            index = faiss.IndexIDMap2(base)
        else:  # flat, or an empty ivf that has nothing to train on yet
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
        index.add_with_ids(x, ids)
        return cls(index, array_source(ids, v16), gpu=gpu, nprobe=nprobe, ef_search=ef_search)

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            faiss.write_index(self.index, str(tmp))

    @classmethod
    def load(cls, path: Path, vectors_of: VectorSource, gpu: bool | None = None, nprobe: int | None = None,
             ef_search: int = 128) -> "VectorIndex":
        """Read a saved index (RuntimeError if FAISS cannot: a damaged file)."""
        return cls(faiss.read_index(str(path)), vectors_of, gpu=gpu, nprobe=nprobe, ef_search=ef_search)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def nprobe(self) -> int | None:
        return int(faiss.extract_index_ivf(self.index).nprobe) if self.kind == "ivf" else None

    def params(self) -> dict:
        """The search settings of this kind, for reports: IVF's nlist and nprobe, HNSW's M and efSearch."""
        if self.kind == "ivf":
            return {"nlist": int(faiss.extract_index_ivf(self.index).nlist), "nprobe": self.nprobe}
        if self.kind == "hnsw":
            hnsw = faiss.downcast_index(self.index.index).hnsw
            return {"M": int(hnsw.nb_neighbors(1)), "ef_search": int(hnsw.efSearch)}
        return {}

    @property
    def on_gpu(self) -> bool:
        return self._gpu_index is not None

    def _use_gpu(self) -> bool:
        return (self.gpu is not False and self.kind in ("flat", "ivf")
                and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0)

    def _search_index(self, k: int) -> faiss.Index:
        if not self._use_gpu() or k > 2048:  # FAISS GPU kernels cap k at 2048
            return self.index
        try:
            # One GPU scratch allocation per process, shared by all indexes.
            VectorIndex._gpu_res = VectorIndex._gpu_res or faiss.StandardGpuResources()
            if self._gpu_index is None:
                self._gpu_index = faiss.index_cpu_to_gpu(VectorIndex._gpu_res, 0, self.index)
            return self._gpu_index
        except Exception as e:  # a broken GPU must not break search
            warnings.warn(f"FAISS GPU unavailable, searching on CPU: {e}")
            self.gpu = False
            return self.index

    def search(self, queries: np.ndarray, k: int,
               allowed_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query, shape (nq, k); missing hits are id -1, score -inf.

        ``allowed_ids`` applies before ranking: k hits whenever >= k allowed vectors exist."""
        q = np.ascontiguousarray(np.asarray(queries, np.float32).reshape(-1, self.dim))
        k = int(k)
        if k <= 0 or len(self) == 0:
            return exact_top_k(q, max(k, 0), [])
        if allowed_ids is not None:
            return self._filtered(q, k, np.unique(np.asarray(allowed_ids, np.int64)))
        scores, ids = self._search_index(k).search(q, k)
        return _pad(scores, ids, k)

    def _filtered(self, q: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Brute force over the allowed vectors when the set is small (simplest correct choice),
        # on HNSW (graph search with a selector loses recall and may return < k) and on GPU
        # (GPU indexes take no id selectors).
        if len(allowed) <= EXACT_FILTER_MAX or self.kind == "hnsw" or self._use_gpu():
            return self._exact(q, k, allowed)
        sel = faiss.IDSelectorBatch(allowed)
        params = (faiss.SearchParametersIVF(sel=sel, nprobe=self.nprobe) if self.kind == "ivf"
                  else faiss.SearchParameters(sel=sel))
        scores, ids = self.index.search(q, k, params=params)
        # IVF only sees the probed lists; queries left short of k hits get the exact answer.
        short = (ids >= 0).sum(axis=1) < min(k, len(allowed))
        if short.any():
            scores[short], ids[short] = self._exact(q[short], k, allowed)
        return _pad(scores, ids, k)

    def _exact(self, q: np.ndarray, k: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        def blocks():
            for start in range(0, len(ids), _BLOCK):
                part = ids[start:start + _BLOCK]
                vectors = self.vectors_of(part)
                held = ~np.isnan(vectors[:, 0]) if len(part) else np.zeros(0, bool)
                yield part[held], vectors[held]
        return exact_top_k(q, k, blocks())


def kind_of(index: faiss.Index) -> str:
    """flat | ivf | hnsw: what a built or loaded FAISS index is."""
    if isinstance(index, faiss.IndexIVF):
        return "ivf"
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"


def best_k(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (scores, ids) of each row, best first, equal scores in id order (so results never
    depend on the order rows were scored in); `ids` is one row of ids for all rows, or one per row."""
    ids = np.broadcast_to(ids, scores.shape)
    if k <= 0:
        return scores[:, :0], ids[:, :0]
    if scores.shape[1] > k:
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        scores, ids = np.take_along_axis(scores, top, 1), np.take_along_axis(ids, top, 1)
    order = np.lexsort((ids, -scores), axis=1)
    return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)


def exact_top_k(q: np.ndarray, k: int, blocks) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner products over (ids, vectors) blocks, keeping only a running top k (bounded memory)."""
    best_s, best_i = np.empty((len(q), 0), np.float32), np.empty((len(q), 0), np.int64)
    for ids, vecs in blocks:
        best_s, best_i = best_k(np.hstack([best_s, q @ vecs.astype(np.float32).T]),
                                np.hstack([best_i, np.broadcast_to(ids, (len(q), len(ids)))]), k)
    return _pad(best_s, best_i, k)


def _pad(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    nq, have = ids.shape
    scores = np.hstack([scores.astype(np.float32), np.full((nq, k - have), -np.inf, np.float32)])
    ids = np.hstack([ids.astype(np.int64), np.full((nq, k - have), -1, np.int64)])
    scores[ids < 0] = -np.inf
    return scores, ids
