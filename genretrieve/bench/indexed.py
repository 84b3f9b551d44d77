"""The product as a benchmark system: the corpus indexed by `build_index` and searched by `Searcher`.

The exact systems (systems.py) score whole documents with one matrix product. `search:MODE` takes
the path `genretrieve index` and `genretrieve search` take: each document written as a file,
chunked by the backbone's tokenizer, encoded by the configured document encoder, stored as float16
rows, searched by FAISS of the configured index kind, the query encoded by query_vectors as in any
search. A document ranks at its best chunk. So `search:teacher` beside `teacher` shows what
chunking, float16 storage and the index kind change; nothing else differs.
"""
from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..config import Config
from ..index.build import build_index
from ..index.vectors import VectorIndex
from ..search import Searcher


class IndexedCorpus:
    """Documents indexed in a temporary folder (removed by `close`), one file per document."""

    def __init__(self, encoder, docs: Sequence[str], config: Config):
        self.config = config
        self._tmp = tempfile.TemporaryDirectory(prefix="genretrieve-bench-")
        root, index_dir = Path(self._tmp.name) / "docs", Path(self._tmp.name) / "index"
        root.mkdir()
        width = len(str(len(docs)))
        for i, text in enumerate(docs):  # the file name is the document's position: hits map back to it
            (root / f"{i:0{width}d}.txt").write_text(text, encoding="utf-8")
        self.summary = build_index(root, index_dir, encoder, config)
        self.searcher = Searcher(index_dir, encoder, config)
        store = self.searcher.folder.store
        # k documents are always among the first k x (most chunks of one document) chunk hits
        self.most_chunks = max((len(store.chunk_ids_for(path)) for path in store.file_records()), default=1)

    def rank(self, texts: list[str], mode: str, k: int, weight: float) -> list[list[int]]:
        """Top-k document positions per query, best first, as `search --mode MODE` ranks their chunks."""
        chunks = max(1, min(k * self.most_chunks, self.summary.chunks_total))
        results = self.searcher.search(texts, chunks, mode, hybrid_weight=weight)
        return [list(dict.fromkeys(int(Path(hit.path).stem) for hit in result.hits))[:k] for result in results]

    def describe(self) -> dict:
        index = self.config.index
        vectors = self.searcher.vectors
        # what "auto" resolved to; the on-disk kinds are always named explicitly
        kind = vectors.kind if isinstance(vectors, VectorIndex) else index.kind
        return {"chunks": self.summary.chunks_total, "files": self.summary.files_indexed, "kind": kind,
                "configured_kind": index.kind, "doc_encoder": index.doc_encoder, "chunk_tokens": index.chunk_tokens,
                "chunk_overlap": index.chunk_overlap, "storage": "float16", "build_s": round(self.summary.seconds, 1)}

    def close(self) -> None:
        self.searcher.folder.close()
        self._tmp.cleanup()
