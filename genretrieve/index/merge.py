"""`genretrieve merge DIR`: join the checked shards of DIR/shards into one searchable index at DIR.

Files are inserted in the order a single-process build walks the folder (iter_files: sorted by
path components) and each file's chunks in their order, so the AUTOINCREMENT chunk ids, the
float16 vectors (copied, never re-encoded) and hence search results equal a fresh one-process
index of the same folder. With an on-disk kind each shard's vectors are one block added to the
shared trained quantizer (ondisk.py). The merged index is written beside DIR and swapped in only when
complete; the shards stay, so a shard can be re-run incrementally and merged again.
Concession: every merge rewrites the whole index (no encoding, but all rows are copied).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..config import Config, _overlay
from ..atomic import write_text
from .build import Report, swap_in
from .folder import MANIFEST, IndexFolder, check_kind
from .lock import writer_lock
from .ondisk import ONDISK_KINDS
from .shards import check_shards, discard_staging, shard_of


@dataclass
class MergeSummary:
    shards: int = 0
    files: int = 0
    chunks: int = 0
    files_failed: list[dict] = field(default_factory=list)  # as reported by the shard runs
    vectors: dict = field(default_factory=dict)  # the manifest's stamp: kind, count (+ on-disk build figures)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def merge_shards(index_dir: Path, kind: str | None = None, report: Report | None = None) -> MergeSummary:
    """Merge under the index's writer lock: an index run or another merge on DIR meanwhile is refused."""
    with writer_lock(Path(index_dir)):
        return _merge(index_dir, kind, report)


def _merge(index_dir: Path, kind: str | None, report: Report | None) -> MergeSummary:
    start = time.perf_counter()
    index_dir = Path(index_dir)
    report = report or (lambda stage, done, total: None)
    if kind:
        check_kind(kind)
    shards = check_shards(index_dir)  # refuses, naming every problem, before anything is written
    first = shards[0].manifest
    config = Config()
    _overlay(config, first["config"], "")  # the settings the shards were built with
    if kind:
        config.index.kind = kind
    staging = index_dir.with_name(f".{index_dir.name}.merge")
    discard_staging(staging, index_dir)
    folder = IndexFolder.create_or_open(staging, first["identity"], config, roots=first.get("roots"))
    sources = [IndexFolder(shard.path) for shard in shards]
    summary = MergeSummary(shards=len(shards))
    try:
        owner = {path: (source.store, row) for source in sources for path, row in source.store.file_records().items()}
        order = sorted(owner, key=lambda rel: rel.split("/"))  # iter_files' order: the ids a one-process build gives
        store = folder.store
        with store.transaction():  # one transaction: the staging folder is discarded on any failure anyway
            for done, rel in enumerate(order, 1):
                source, row = owner[rel]
                chunks = source.chunks_of(rel)
                store.replace_file(rel, row["sha256"], row["size"], row["mtime"], chunks)
                summary.chunks += len(chunks)
                report("merging", done, len(order))
        summary.files = len(order)
        summary.files_failed = [f for shard in shards for f in shard.manifest["shard"].get("failed", [])]
        report("writing vectors", 0, 1)
        # on-disk kinds add one shard's vectors at a time to the trained index (ondisk.py)
        blocks = shard_blocks(store, len(shards)) if config.index.kind in ONDISK_KINDS else None
        folder.write_vectors(config.index.kind, blocks)
        summary.vectors = folder.manifest["vectors"]
        folder.manifest["merged"] = {"shards": len(shards), "listing": first["shard"]["listing"]}
        write_text(folder.path / MANIFEST, json.dumps(folder.manifest, indent=2))
    finally:
        folder.close()
        for source in sources:
            source.close()
    swap_in(staging, index_dir)
    summary.seconds = time.perf_counter() - start
    return summary


def shard_blocks(store, count: int) -> list[np.ndarray]:
    """The merged index's chunk ids grouped by the shard their file came from."""
    ids, paths = store.vector_paths()
    shard = np.fromiter((shard_of(path, count) for path in paths), np.int64, count=len(paths))
    return [ids[shard == s] for s in range(count)]
