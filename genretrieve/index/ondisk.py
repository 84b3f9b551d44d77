"""On-disk IVF index for collections whose vectors do not fit in RAM: compressed codes in one mmapped file.

Built from the float16 vectors in SQLite without ever holding them all: the coarse quantizer and
the code (SQ8 or PQ) are trained on a seeded sample, each block of vectors (one per shard after
`merge`) is added to a copy of the trained empty index and written to its own file, and FAISS's
`merge_ondisk` joins the blocks' inverted lists into one `.ivfdata` file. Search opens the small
index file and memory-maps the lists, so RAM holds the quantizer plus the pages the OS reads in.
Why SQ8 comes first: 1 byte per dimension (4x less than float32, 2x less than the float16 store)
rounds each coordinate to 1/255 of its range, which keeps MiniLM's recall close to IVF-Flat;
PQ (d/8 bytes per vector, 48 for 384-d) is for when even that is too big, at a measured recall
cost that re-scoring 10x k candidates with their exact vectors from SQLite mostly buys back
(README). Concessions: CPU only (a GPU would need the lists in its memory), no in-place updates
(any change rebuilds from SQLite, retraining included), SQ8 scores are those of the codes.
"""
from __future__ import annotations

import math
import os
import shutil
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np
from faiss.contrib.ondisk import merge_ondisk

from ..atomic import atomic_path
from .vectors import EXACT_FILTER_MAX, _pad, exact_top_k, ivf_params

ONDISK_KINDS = ("ivf-sq8", "ivf-pq")
INDEX_FILE = "vectors.ondisk"   # quantizer, code parameters and list offsets; names its .ivfdata file
TRAIN_PER_LIST = 50             # training sample: 50 vectors per list (FAISS asks for at least 39) ...
TRAIN_MIN = 10_000              # ... and enough for PQ's 256-centroid codebooks
RERANK = {"ivf-sq8": 0, "ivf-pq": 10}  # PQ: fetch 10x k candidates, re-score them exactly from SQLite's vectors
BLOCK_ROWS = 200_000            # rows per block when no shards say otherwise (bounds the memory of a build)
READ_ROWS = 50_000              # rows read from SQLite at a time


@contextmanager
def quiet_faiss():
    """FAISS's C++ code prints notes ("resizing ...") with printf on the process's stdout, where they would
    corrupt `--json` output: point fds 1 and 2 at /dev/null meanwhile (errors still come as exceptions)."""
    sys.stdout.flush(), sys.stderr.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no real stdout/stderr (some embedded runners): nothing to hide
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1), os.dup2(null.fileno(), 2)
            yield
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


def pq_m(dim: int) -> int:
    """PQ sub-quantizers: ~8 dimensions each (48 bytes for 384-d), a divisor of dim as FAISS requires."""
    return max(m for m in range(1, max(1, dim // 8) + 1) if dim % m == 0)


def empty_index(kind: str, dim: int, nlist: int, train_n: int) -> faiss.IndexIVF:
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivf-sq8":
        return faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                             faiss.METRIC_INNER_PRODUCT)
    if kind == "ivf-pq":  # 8-bit codebooks; fewer bits only when there are too few vectors to train 256 centroids
        nbits = int(min(8, max(1, math.floor(math.log2(max(train_n, 2))))))
        return faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m(dim), nbits, faiss.METRIC_INNER_PRODUCT)
    raise ValueError(f"on-disk kind must be one of {ONDISK_KINDS}, not {kind!r}")


def build_ondisk(folder: Path, store, dim: int, kind: str, blocks: list[np.ndarray] | None = None) -> dict:
    """Write `vectors.ondisk` + one `.ivfdata` for the vectors in `store`; returns what the manifest records.

    `blocks` are arrays of chunk ids (all of them, once each); default: runs of BLOCK_ROWS ids.
    The new `.ivfdata` gets a fresh name and the index file is swapped in by os.replace, so an
    interrupted build leaves the previous pair searchable; `remove_stale` deletes old files after.
    """
    start = time.perf_counter()
    folder = Path(folder)
    ids = store.vector_ids()
    blocks = [np.asarray(b, np.int64) for b in blocks] if blocks is not None else \
        [ids[s:s + BLOCK_ROWS] for s in range(0, len(ids), BLOCK_ROWS)]
    blocks = [b for b in blocks if len(b)]
    if sum(len(b) for b in blocks) != len(ids) or (len(ids) and not np.array_equal(np.sort(np.concatenate(blocks)), ids)):
        raise ValueError("the blocks must hold every chunk id with a vector exactly once")
    n = len(ids)
    nlist, nprobe = ivf_params(max(n, 1))
    rng = np.random.default_rng(0)  # seeded: the same vectors give the same quantizer, however they are split
    sample = ids[np.sort(rng.choice(n, size=min(n, max(TRAIN_PER_LIST * nlist, TRAIN_MIN)), replace=False))]
    index = empty_index(kind, dim, nlist, len(sample))
    with quiet_faiss():
        if n:
            index.train(store.vectors_of(sample, dim).astype(np.float32))
    trained = faiss.serialize_index(index)
    train_s = time.perf_counter() - start
    work = folder / f".ondisk-build.{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ivfdata = f"vectors.{uuid.uuid4().hex[:12]}.ivfdata"  # a new name: the live index's file is never touched
    try:
        names = []
        for b, block in enumerate(blocks):  # one block in memory at a time: its codes, never all vectors
            part = faiss.deserialize_index(trained)
            for s in range(0, len(block), READ_ROWS):
                part.add_with_ids(store.vectors_of(block[s:s + READ_ROWS], dim).astype(np.float32),
                                  block[s:s + READ_ROWS])
            names.append(str(work / f"block-{b}.index"))
            faiss.write_index(part, names[-1])
        add_s = time.perf_counter() - start - train_s
        merged = faiss.deserialize_index(trained)
        if n:
            with quiet_faiss():
                merge_ondisk(merged, names, str(folder / ivfdata))
        else:  # an empty file cannot be mmapped: an empty index keeps its (empty) lists in the index file
            ivfdata = None
        with atomic_path(folder / INDEX_FILE) as tmp:
            faiss.write_index(merged, str(tmp))
    except BaseException:
        if ivfdata:
            (folder / ivfdata).unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    merge_s = time.perf_counter() - start - train_s - add_s
    return {"kind": kind, "count": n, "nlist": nlist, "nprobe": nprobe, "rerank": RERANK[kind], "train_n": len(sample),
            "code_bytes": int(index.code_size), "blocks": len(blocks), "ivfdata": ivfdata,
            "bytes": sum((folder / name).stat().st_size for name in (INDEX_FILE, ivfdata) if name),
            "train_s": round(train_s, 3), "add_s": round(add_s, 3), "merge_s": round(merge_s, 3)}


def remove_stale(folder: Path, info: dict | None) -> None:
    """Once the manifest names the current files (`info`; None: an in-RAM kind now), delete the others,
    and what a killed build left behind (one writer per index at a time, as for SQLite)."""
    folder = Path(folder)
    for path in folder.glob("vectors.*.ivfdata"):
        if not info or path.name != info["ivfdata"]:
            path.unlink(missing_ok=True)
    for path in folder.glob(f".{INDEX_FILE}.*.tmp"):
        path.unlink(missing_ok=True)
    for path in folder.glob(".ondisk-build.*"):
        shutil.rmtree(path, ignore_errors=True)
    if info is None:
        (folder / INDEX_FILE).unlink(missing_ok=True)


def is_current(folder: Path, info: dict | None) -> bool:
    return bool(info) and (Path(folder) / INDEX_FILE).exists() and (
        info["ivfdata"] is None or (Path(folder) / info["ivfdata"]).exists())


class OnDiskIndex:
    """Search an on-disk index: the same (scores, ids) contract as VectorIndex.search, on CPU."""

    def __init__(self, folder: Path, store, dim: int, nprobe: int | None = None, rerank: int = 0) -> None:
        self.store, self.dim, self.rerank = store, int(dim), int(rerank)
        with quiet_faiss():  # IO_FLAG_ONDISK_SAME_DIR: the .ivfdata is found beside the index file, wherever it moved
            self.index = faiss.read_index(str(Path(folder) / INDEX_FILE), faiss.IO_FLAG_ONDISK_SAME_DIR)
        self.ivf = faiss.extract_index_ivf(self.index)
        self.nprobe = min(self.ivf.nlist, nprobe or ivf_params(max(self.index.ntotal, 1))[1])
        self.ivf.nprobe = self.nprobe

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int,
               allowed_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids); ``allowed_ids`` applies before ranking, with an exact answer when IVF finds < k."""
        q = np.ascontiguousarray(np.asarray(queries, np.float32).reshape(-1, self.dim))
        k = int(k)
        if k <= 0 or len(self) == 0:
            return exact_top_k(q, max(k, 0), [])
        fetch = k * max(1, self.rerank)
        if allowed_ids is None:
            return self._rescored(q, *self.index.search(q, fetch), k)
        allowed = np.unique(np.asarray(allowed_ids, np.int64))
        if len(allowed) <= EXACT_FILTER_MAX:  # a small set: brute force over its vectors, read from SQLite
            return self._exact(q, k, allowed)
        params = faiss.SearchParametersIVF(sel=faiss.IDSelectorBatch(allowed), nprobe=self.nprobe)
        scores, ids = self._rescored(q, *self.index.search(q, fetch, params=params), k)
        short = (ids >= 0).sum(axis=1) < min(k, len(allowed))  # the probed lists held too few allowed vectors
        if short.any():
            scores[short], ids[short] = self._exact(q[short], k, allowed)
        return scores, ids

    def _rescored(self, q: np.ndarray, scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The top k of the candidates: by the codes' scores, or (rerank) by exact scores of their stored vectors."""
        if self.rerank <= 1 or not (ids >= 0).any():
            return _by_score(scores[:, :k], ids[:, :k], k)
        found = np.unique(ids[ids >= 0])
        # missing_ok: a chunk deleted by an index run since these lists were written scores -inf, not an error
        vectors = self.store.vectors_of(found, self.dim, missing_ok=True).astype(np.float32)
        rows = np.searchsorted(found, np.where(ids >= 0, ids, found[0]))
        exact = np.einsum("qd,qcd->qc", q, vectors[rows]) if len(q) <= 64 else \
            np.vstack([vectors[r] @ v for v, r in zip(q, rows)])  # bounded memory for big batches
        exact[(ids < 0) | np.isnan(exact)] = -np.inf
        top = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        return _by_score(np.take_along_axis(exact, top, 1), np.take_along_axis(ids, top, 1), k)

    def _exact(self, q: np.ndarray, k: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        blocks = ((part, self.store.vectors_of(part, self.dim))
                  for part in (ids[s:s + READ_ROWS] for s in range(0, len(ids), READ_ROWS)))
        return exact_top_k(q, k, blocks)


def _by_score(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal scores in id order, so the result does not depend on the order blocks filled the lists."""
    scores, ids = _pad(scores, ids, k)
    order = np.lexsort((np.where(ids < 0, np.iinfo(np.int64).max, ids), -scores), axis=1)
    return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)
