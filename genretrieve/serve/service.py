"""What the server does, without HTTP: search and embed through one copy of the models.

The encoder is loaded once by the caller; the Searcher (SQLite connection, FAISS index) is
opened on the batcher's worker thread and used only there. Search requests are batched per
(k, mode, path, safety, hybrid weight) into one `Searcher.search` call, which encodes all their
queries in one forward pass; embedding requests are batched per model. A missing index does not
stop the server: /search says how to build one, and finds it once it exists; an index rebuilt or
updated by `genretrieve index` while serving is reopened at the next search.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..embeddings import EMBEDDING_MODELS, embed, token_counts
from ..errors import GenretrieveError, UsageError
from ..index.folder import MANIFEST
from ..search import Searcher
from .batching import MicroBatcher

MAX_K = 1000  # a server bound: FAISS allocates k results per query up front


class Service:
    def __init__(self, encoder, index_dir: Path, config, window: float = 0.002, max_items: int = 64, on_ready=None):
        self.encoder = encoder
        self.index_dir = Path(index_dir)
        self.config = config
        self.searcher: Searcher | None = None
        self._stamp: int | None = None  # the manifest's mtime when the Searcher was opened
        self.batcher = MicroBatcher(self._call, window=window, max_items=max_items)
        self.on_ready = on_ready  # called once the models are warm and requests are answered

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self.batcher.start()
        await self.batcher.run_in_worker(self._warm_up)
        if self.on_ready:
            self.on_ready()

    async def stop(self) -> None:
        if self.searcher is not None:  # on the thread that opened its SQLite connection
            await self.batcher.run_in_worker(self.searcher.folder.close)
        await self.batcher.stop()

    def _warm_up(self) -> None:
        """First forward passes and the FAISS load happen here, not in the first request."""
        self.encoder.teacher.encode(["warm-up"])
        self.encoder.encode_queries(["warm-up"])
        try:
            self._open().search(["warm-up"], 1, self.config.search.mode)
        except (GenretrieveError, UsageError):
            pass  # no index yet, or a mode this adapter refuses: /search says so when asked

    def _open(self) -> Searcher:
        """The Searcher, reopened when `genretrieve index` has rewritten the manifest since (a stat per call)."""
        try:
            stamp = (self.index_dir / MANIFEST).stat().st_mtime_ns
        except OSError:
            stamp = None
        if self.searcher is not None and stamp != self._stamp:
            self.searcher.folder.close()
            self.searcher = None
        if self.searcher is None:
            self.searcher = Searcher(self.index_dir, self.encoder, self.config)
            self._stamp = stamp
        return self.searcher

    # --- requests ----------------------------------------------------------------------------------
    async def search(self, query: str, k: int | None = None, mode: str | None = None, path: str | None = None,
                     safety: str | None = None, hybrid_weight: float | None = None):
        s = self.config.search
        k = s.k if k is None else k
        if k > MAX_K:
            raise UsageError(f"-k must be at most {MAX_K} here")
        key = ("search", k, mode or s.mode, path or None, safety or s.safety,
               s.hybrid_weight if hybrid_weight is None else hybrid_weight)
        [result] = await self.batcher.submit(key, [query])
        return result

    async def embed(self, texts: list[str], model: str) -> tuple[np.ndarray, int]:
        """Unit vectors (n, dim) and the token count of the texts, for the model named."""
        if model not in EMBEDDING_MODELS:
            raise UsageError(f"model must be one of {', '.join(EMBEDDING_MODELS)}, not {model!r}")
        if any(not isinstance(t, str) or not t.strip() for t in texts):
            raise UsageError("every input must be a non-empty string")
        rows = await self.batcher.submit(("embed", model), texts)
        return np.stack([vector for vector, _ in rows]), sum(tokens for _, tokens in rows)

    async def info(self) -> dict:
        return await self.batcher.run_in_worker(self._info)

    # --- on the worker thread -----------------------------------------------------------------------
    def _call(self, key: tuple, items: list) -> list:
        if key[0] == "search":
            _, k, mode, path, safety, weight = key
            return self._open().search(items, k, mode, path, safety, weight)
        model = key[1]
        return list(zip(embed(self.encoder, model, items), token_counts(self.encoder, model, items)))

    def _info(self) -> dict:
        from ..models.load import describe

        s = self.config.search
        report = {"models": describe(self.encoder), "embedding_models": list(EMBEDDING_MODELS), "dim": int(self.encoder.dim),
                  "search_defaults": {"k": s.k, "mode": s.mode, "safety": s.safety, "hybrid_weight": s.hybrid_weight},
                  "batching": {"window_ms": self.batcher.window * 1000, "max_items": self.batcher.max_items,
                               **self.batcher.stats}}
        try:
            searcher = self._open()
        except GenretrieveError as exc:
            report["index"] = {"path": str(self.index_dir), "error": str(exc)}
            report["safety"] = None
            return report
        report["index"] = {**searcher.folder.describe(), "identity": searcher.folder.manifest["identity"],
                           "vectors": searcher.folder.manifest.get("vectors")}
        probe = searcher.probe
        report["safety"] = None if probe is None else {"features": probe.features, "threshold": probe.threshold,
                                                       "calibration": probe.calibration}
        return report
