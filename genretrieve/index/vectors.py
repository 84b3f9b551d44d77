"""Vector index: raw float16 vectors (the source of truth) plus a FAISS index built from them.

Vectors are L2-normalised and scored by inner product. The raw vectors are persisted beside the
FAISS file so the index can be rebuilt or retyped (flat/ivf/hnsw) without re-encoding text; the
concessions are ~2 bytes/dim of extra disk and memory, float16 rounding of every score, and a
full rebuild (IVF retraining included) when an update cannot be applied in place.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import faiss
import numpy as np

IVF_THRESHOLD = 50_000      # "auto": exact flat search is fast enough below this many vectors
EXACT_FILTER_MAX = 20_000   # filtered searches over at most this many vectors are brute force
KINDS = ("auto", "flat", "ivf", "hnsw")
_BLOCK = 65_536             # rows converted to float32 at a time in exact search (bounds memory)


def ivf_params(n: int) -> tuple[int, int]:
    """(nlist, default nprobe) for ``n`` vectors.

    nlist = clamp(4*sqrt(n), 16, 65536) follows the FAISS wiki guideline (lists of ~sqrt(n)/4
    vectors balance coarse-quantizer cost against list scans), capped at n // 39 so k-means
    gets the 39 points per centroid FAISS asks for. nprobe = nlist // 8 (at least 8) scans
    ~12% of the lists: on real MiniLM embeddings of text (`bench speed --sections faiss`), where
    sentence vectors overlap far more than synthetic clusters, nlist // 16 gave recall@10 0.76
    (2k vectors) and nlist // 8 gives 0.88 (10k vectors, 8x flat's throughput). Raise nprobe
    (or choose HNSW, 0.98) if recall matters more than speed.
    """
    nlist = min(max(int(4 * math.sqrt(n)), 16), 65536, max(1, n // 39))
    return nlist, min(nlist, max(8, nlist // 8))


class VectorIndex:
    _gpu_res = None

    def __init__(self, dim: int, kind: str = "auto", nprobe: int | None = None,
                 hnsw_m: int = 32, *, gpu: bool | None = None, ef_search: int = 128) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self.dim, self.kind, self.nprobe, self.hnsw_m = int(dim), kind, nprobe, hnsw_m
        self.gpu, self.ef_search = gpu, ef_search
        self._ids, self._vecs = np.empty(0, np.int64), np.empty((0, self.dim), np.float16)
        self._index: faiss.Index | None = None  # CPU index; None = rebuild before next use
        self._built_kind: str | None = None
        self._trained_n = 0  # vectors present when IVF was trained (nlist was sized for it)
        self._gpu_index: faiss.Index | None = None

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def effective_kind(self) -> str:
        """The kind to build now: "auto" is flat below IVF_THRESHOLD vectors, else ivf."""
        auto = "flat" if len(self) < IVF_THRESHOLD else "ivf"
        return auto if self.kind == "auto" else self.kind

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Add vectors; an id already present has its vector replaced."""
        ids = np.asarray(ids, np.int64).ravel()
        v16 = np.asarray(vecs, np.float32).reshape(-1, self.dim).astype(np.float16)
        if len(ids) != len(v16) or len(np.unique(ids)) != len(ids) or (ids < 0).any():
            raise ValueError("need one vector per id, ids unique and >= 0 (-1 pads results)")
        old = np.isin(self._ids, ids)
        self._ids, self._vecs = (np.concatenate([self._ids[~old], ids]),
                                 np.concatenate([self._vecs[~old], v16]))
        if self._can_update_in_place():
            if old.any():
                self._index.remove_ids(faiss.IDSelectorBatch(ids))
            # Add the float16-rounded values so results equal a rebuild from vectors.npz.
            self._index.add_with_ids(v16.astype(np.float32), ids)
        self._changed()

    def remove(self, ids) -> None:
        ids = np.asarray(ids, np.int64).ravel()
        gone = np.isin(self._ids, ids)
        if not gone.any():
            return
        self._ids, self._vecs = self._ids[~gone], self._vecs[~gone]
        if self._can_update_in_place():
            self._index.remove_ids(faiss.IDSelectorBatch(ids))
        self._changed()

    def _can_update_in_place(self) -> bool:
        # HNSW cannot delete, and the kind or IVF sizing may have gone stale: rebuild then.
        if self._index is None or self.effective_kind() != self._built_kind:
            return False
        n = len(self)
        return self._built_kind == "flat" or (
            self._built_kind == "ivf" and self._trained_n / 4 <= n <= 4 * self._trained_n)

    def _changed(self) -> None:
        self._gpu_index = None
        if not self._can_update_in_place():
            self._index = None

    def _built(self) -> faiss.Index:
        if self._index is not None:  # still valid: no change since the last build
            return self._index
        n, d, kind = len(self), self.dim, self.effective_kind()
        x = self._vecs.astype(np.float32)
        if kind == "ivf" and n > 0:
            nlist, _ = ivf_params(n)
            # IVF stores ids natively; IndexIDMap2 around IVF corrupts ids on remove_ids.
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)  # seeded training sample: same data, same index
            index.train(x[np.sort(rng.choice(n, size=min(n, 256 * nlist), replace=False))])
        elif kind == "hnsw":
            base = faiss.IndexHNSWFlat(d, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = max(40, 2 * self.hnsw_m)
            index = faiss.IndexIDMap2(base)
        else:  # flat, or an empty ivf that has nothing to train on yet
            kind, index = "flat", faiss.IndexIDMap2(faiss.IndexFlatIP(d))
        index.add_with_ids(x, self._ids)
        self._index, self._built_kind, self._trained_n = index, kind, n
        return index

    def _tune(self, index: faiss.Index) -> None:
        if self._built_kind == "ivf":
            ivf = faiss.extract_index_ivf(index)
            ivf.nprobe = min(ivf.nlist, self.nprobe or max(1, ivf.nlist // 16))  # ivf_params
        elif self._built_kind == "hnsw":
            faiss.downcast_index(index.index).hnsw.efSearch = self.ef_search

    def _use_gpu(self) -> bool:
        return (self.gpu is not False and self.effective_kind() in ("flat", "ivf")
                and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0)

    def _search_index(self, k: int) -> faiss.Index:
        index = self._built()
        self._tune(index)
        if not self._use_gpu() or k > 2048:  # FAISS GPU kernels cap k at 2048
            return index
        try:
            # One GPU scratch allocation per process, shared by all indexes.
            VectorIndex._gpu_res = VectorIndex._gpu_res or faiss.StandardGpuResources()
            if self._gpu_index is None:  # dropped on every change, re-copied lazily
                self._gpu_index = faiss.index_cpu_to_gpu(VectorIndex._gpu_res, 0, index)
            return self._gpu_index
        except Exception as e:  # a broken GPU must not break search
            warnings.warn(f"FAISS GPU unavailable, searching on CPU: {e}")
            self.gpu = False
            return index

    def search(self, queries: np.ndarray, k: int,
               allowed_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query, shape (nq, k); missing hits are id -1, score -inf.

        ``allowed_ids`` applies before ranking: k hits whenever >= k allowed vectors exist."""
        q = np.ascontiguousarray(np.asarray(queries, np.float32).reshape(-1, self.dim))
        k = int(k)
        if k <= 0 or len(self) == 0:
            return self._exact(q, max(k, 0), np.empty(0, np.int64))
        if allowed_ids is not None:
            rows = np.flatnonzero(np.isin(self._ids, np.asarray(allowed_ids, np.int64)))
            return self._filtered(q, k, rows)
        scores, ids = self._search_index(k).search(q, k)
        return _pad(scores, ids, k)

    def _filtered(self, q: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Brute force over the allowed raw vectors when the set is small (simplest correct
        # choice; needs no FAISS build), on HNSW (graph search with a selector loses recall
        # and may return < k) and on GPU (GPU indexes take no id selectors).
        if len(rows) <= EXACT_FILTER_MAX or self.effective_kind() == "hnsw" or self._use_gpu():
            return self._exact(q, k, rows)
        index = self._built()
        self._tune(index)
        sel = faiss.IDSelectorBatch(self._ids[rows])
        params = (faiss.SearchParametersIVF(sel=sel, nprobe=faiss.extract_index_ivf(index).nprobe)
                  if self._built_kind == "ivf" else faiss.SearchParameters(sel=sel))
        scores, ids = index.search(q, k, params=params)
        # IVF only sees the probed lists; queries left short of k hits get the exact answer.
        short = (ids >= 0).sum(axis=1) < min(k, len(rows))
        if short.any():
            scores[short], ids[short] = self._exact(q[short], k, rows)
        return _pad(scores, ids, k)

    def _exact(self, q: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        blocks = ((self._ids[r], self._vecs[r]) for r in (rows[s:s + _BLOCK] for s in range(0, len(rows), _BLOCK)))
        return exact_top_k(q, k, blocks)

    def save(self, folder: Path) -> None:
        """Write vectors.faiss then vectors.npz, each via a temp file and os.replace.

        vectors.npz goes last and records the FAISS file's size, so load() spots a crash
        between the two replaces and rebuilds FAISS from the raw vectors."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        # Temp names in the same folder so os.replace is a same-filesystem atomic rename.
        tmp_faiss = folder / f".vectors.faiss.{os.getpid()}.tmp"
        tmp_npz = folder / f".vectors.npz.{os.getpid()}.tmp"
        faiss.write_index(self._built(), str(tmp_faiss))
        config = {"dim": self.dim, "kind": self.kind, "nprobe": self.nprobe, "hnsw_m": self.hnsw_m,
                  "ef_search": self.ef_search, "built_kind": self._built_kind,
                  "trained_n": self._trained_n, "faiss_bytes": tmp_faiss.stat().st_size}
        with open(tmp_npz, "wb") as f:  # a file object stops numpy appending ".npz"
            np.savez(f, ids=self._ids, vecs=self._vecs, config=np.array(json.dumps(config)))
        os.replace(tmp_faiss, folder / "vectors.faiss")
        os.replace(tmp_npz, folder / "vectors.npz")

    @classmethod
    def load(cls, folder: Path, kind: str | None = None, gpu: bool | None = None) -> "VectorIndex":
        """Load a saved index; a different ``kind`` rebuilds FAISS from the raw vectors."""
        with np.load(Path(folder) / "vectors.npz", allow_pickle=False) as data:
            cfg = json.loads(str(data["config"]))
            self = cls(cfg["dim"], kind=kind or cfg["kind"], nprobe=cfg["nprobe"],
                       hnsw_m=cfg["hnsw_m"], gpu=gpu, ef_search=cfg["ef_search"])
            self._ids, self._vecs = data["ids"], data["vecs"]
        path = Path(folder) / "vectors.faiss"
        if (self.effective_kind() == cfg["built_kind"] and path.exists()
                and path.stat().st_size == cfg["faiss_bytes"]):
            index = faiss.read_index(str(path))
            if index.ntotal == len(self) and index.d == self.dim:  # else rebuild lazily
                self._index, self._built_kind = index, cfg["built_kind"]
                self._trained_n = cfg["trained_n"]
        return self


def exact_top_k(q: np.ndarray, k: int, blocks) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner products over (ids, vectors) blocks, keeping only a running top k (bounded memory)."""
    best_s, best_i = np.empty((len(q), 0), np.float32), np.empty((len(q), 0), np.int64)
    for ids, vecs in blocks:
        s = np.hstack([best_s, q @ vecs.astype(np.float32).T])
        i = np.hstack([best_i, np.broadcast_to(ids, (len(q), len(ids)))])
        if s.shape[1] > k:  # keep only the running top k
            top = np.argpartition(-s, k - 1, axis=1)[:, :k]
            s, i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
        best_s, best_i = s, i
    order = np.argsort(-best_s, axis=1, kind="stable")
    return _pad(np.take_along_axis(best_s, order, 1), np.take_along_axis(best_i, order, 1), k)


def _pad(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    nq, have = ids.shape
    scores = np.hstack([scores.astype(np.float32), np.full((nq, k - have), -np.inf, np.float32)])
    ids = np.hstack([ids.astype(np.int64), np.full((nq, k - have), -1, np.int64)])
    scores[ids < 0] = -np.inf
    return scores, ids
