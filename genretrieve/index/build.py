"""Index a folder: find what changed, read and chunk it, encode only new content, commit per batch.

SQLite is the single source of truth: each chunk row carries its float16 vector, and every
batch of files is committed in one transaction, so an interrupted run leaves each file either
fully old or fully new and the next run resumes where it stopped. The FAISS file is derived
from those rows at the end and stamped with the store's generation; a stale one is rebuilt.
`--rebuild` builds a fresh index beside the old one and swaps it in only when complete; a
`staged` run (the Ray engine) updates a copy the same way. Encoding is a pluggable producer
(local here, Ray Data in ray_engine.py) and `shard=(i, n)` writes one shard (see shards.py).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..config import Config, IndexConfig
from ..errors import UsageError
from .chunking import chunk_documents, whole_document
from .folder import MANIFEST, IndexFolder, check_kind, index_identity
from .readers import UnreadableFile, is_supported, iter_files, read_file
from .shards import SHARDS, discard_staging, listing_fingerprint, mark_shard_complete, shard_dir, shard_of

Report = Callable[[str, int, int], None]  # (stage, done, total)
ENCODE_BATCH = 256  # chunks per commit: big enough to batch the encoder, small enough to lose little on a crash
Todo = tuple[Path, str, str, os.stat_result]  # (path, rel, sha256, stat) of a file to (re)index
Batch = list[tuple[str, str, os.stat_result, list[dict]]]  # files ready to commit: chunks carry "vector"


@dataclass
class IndexSummary:
    files_seen: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    files_skipped: int = 0  # unsupported or binary
    files_failed: list[dict] = field(default_factory=list)  # {"path", "error"}
    files_removed: list[str] = field(default_factory=list)
    chunks_added: int = 0
    chunks_encoded: int = 0  # added chunks whose text was new (others reused a stored vector)
    chunks_removed: int = 0
    chunks_total: int = 0
    seconds: float = 0.0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks_encoded / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "chunks_per_s": round(self.chunks_per_s, 2)}


# (todo, summary, report) -> batches of encoded files, in todo order (that order fixes the chunk ids)
Producer = Callable[[list[Todo], IndexSummary, Report], Iterator[Batch]]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rel_path(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else path.name


def document_encoder(encoder, doc_encoder: str):
    if doc_encoder == "teacher":
        if not encoder.teacher_space_matches:
            raise UsageError("this adapter (imported from the paper) does not embed into the loaded teacher's space, "
                             "so documents must be encoded by the adapter itself: use --doc-encoder gen")
        return encoder.teacher.encode
    if doc_encoder == "gen":
        return encoder.encode_documents
    raise UsageError(f"--doc-encoder must be teacher or gen, not {doc_encoder!r}")


def chunk_file(path: Path, root: Path, tokenizer, index: IndexConfig, no_chunk: bool) -> list[dict]:
    """The chunks of one file, in order (raises UnreadableFile); shared by every engine so chunks match."""
    docs = list(read_file(path, root))  # one tokenizer call for all of a file's documents (JSONL records, pages)
    pieces = [whole_document(doc) for doc in docs] if no_chunk else chunk_documents(
        docs, tokenizer, index.chunk_tokens, index.chunk_overlap)
    return [{**asdict(piece), "metadata": doc.metadata, "chunk_hash": sha256_bytes(piece.text.encode())}
            for doc, doc_pieces in zip(docs, pieces) for piece in doc_pieces]


def local_producer(root: Path, encoder, encode, config: Config, no_chunk: bool, store) -> Producer:
    """Read, chunk and encode in this process; a chunk whose text the store holds reuses its vector."""
    def produce(todo: list[Todo], summary: IndexSummary, report: Report) -> Iterator[Batch]:
        pending: Batch = []
        for done, (path, rel, digest, stat) in enumerate(todo, 1):
            try:
                pending.append((rel, digest, stat, chunk_file(path, root, encoder.backbone.tokenizer,
                                                              config.index, no_chunk)))
            except UnreadableFile as exc:
                summary.files_failed.append({"path": rel, "error": str(exc)})
            if pending and (done == len(todo) or sum(len(c) for *_, c in pending) >= ENCODE_BATCH):
                texts = {c["chunk_hash"]: c["text"] for *_, chunks in pending for c in chunks}
                vectors = store.vectors_for_hashes(list(texts))
                new = [h for h in texts if h not in vectors]
                if new:
                    vectors.update(zip(new, encode([texts[h] for h in new]).astype(np.float16)))
                    summary.chunks_encoded += len(new)
                for *_, chunks in pending:
                    for c in chunks:
                        c["vector"] = vectors[c["chunk_hash"]]
                batch, pending = pending, []
                yield batch
            report("encoding", done, len(todo))
    return produce


def build_index(root: Path, index_dir: Path, encoder, config: Config, rebuild: bool = False,
                no_chunk: bool = False, report: Report | None = None, shard: tuple[int, int] | None = None,
                produce: Producer | None = None, staged: bool = False) -> IndexSummary:
    root, index_dir = Path(root), Path(index_dir)
    if not root.exists():
        raise UsageError(f"{root} does not exist")
    start = time.perf_counter()
    report = report or (lambda stage, done, total: None)
    summary = IndexSummary()
    paths = list(iter_files(root))
    supported = [p for p in paths if is_supported(p)]
    summary.files_seen, summary.files_skipped = len(paths), len(paths) - len(supported)
    if not supported:
        raise UsageError(f"{root} has no supported files (.txt .md .rst .html .htm .pdf .jsonl); nothing indexed")

    encode = document_encoder(encoder, config.index.doc_encoder)  # refuse before any folder is created
    check_kind(config.index.kind)
    identity = index_identity(encoder, config, no_chunk)
    listing = None
    if shard:  # every shard lists the whole folder, so merge can check they all saw the same one
        listing = listing_fingerprint([rel_path(p, root) for p in supported])
        supported = [p for p in supported if shard_of(rel_path(p, root), shard[1]) == shard[0]]
        index_dir = shard_dir(index_dir, *shard)
    target = index_dir
    if rebuild or staged:
        target = index_dir.with_name(f".{index_dir.name}.{'rebuild' if rebuild else 'staging'}")
    if rebuild and target.exists() and not IndexFolder(target).matches(identity):
        discard_staging(target, index_dir)  # a stale half-rebuild from other settings; the live index is untouched
    elif staged and not rebuild:
        discard_staging(target, index_dir)  # always start from a fresh copy of the live index
        if (index_dir / MANIFEST).exists():
            shutil.copytree(index_dir, target, ignore=lambda d, names: [SHARDS] if Path(d) == index_dir else [])
    folder = IndexFolder.create_or_open(target, identity, config)
    store = folder.store

    known = store.file_records()
    present, todo = set(), []
    for path in supported:
        rel = rel_path(path, root)
        present.add(rel)
        stat = path.stat()
        record = known.get(rel)
        if record and record["size"] == stat.st_size and record["mtime"] == stat.st_mtime:
            summary.files_unchanged += 1
            continue
        try:
            digest = sha256_bytes(path.read_bytes())
        except OSError as exc:  # e.g. no permission: report and skip, like any unreadable file
            summary.files_failed.append({"path": rel, "error": exc.strerror or str(exc)})
            continue
        if record and record["sha256"] == digest:
            store.touch_file(rel, stat.st_size, stat.st_mtime)
            summary.files_unchanged += 1
            continue
        todo.append((path, rel, digest, stat))

    produce = produce or local_producer(root, encoder, encode, config, no_chunk, store)
    for batch in produce(todo, summary, report):
        with store.db.atomic():
            for rel, digest, stat, chunks in batch:
                store.replace_file(rel, digest, stat.st_size, stat.st_mtime, chunks)
                summary.chunks_added += len(chunks)
                summary.files_indexed += 1

    gone = sorted(set(known) - present)
    if gone:
        summary.chunks_removed = len(store.remove_files(gone))
        summary.files_removed = gone
    summary.chunks_total = store.count_chunks()
    if shard:  # a shard needs no FAISS file: merge derives one for the whole index
        mark_shard_complete(folder, shard, listing, summary.files_failed)
    else:
        report("writing vectors", 0, 1)
        folder.write_vectors(config.index.kind)
    folder.close()
    if rebuild or staged:
        swap_in(target, index_dir)
    summary.seconds = time.perf_counter() - start
    return summary


def swap_in(staging: Path, live: Path) -> None:
    """Replace the live index folder with a complete one; the old folder is removed only afterwards.

    Shards outlive the index merged from them, so they move into the new folder first: at every
    moment they sit in either the live folder or the staging one (where merge looks for them).
    """
    old = live.with_name(f".{live.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if (live / SHARDS).is_dir() and not (staging / SHARDS).exists():
        os.replace(live / SHARDS, staging / SHARDS)
    if live.exists():
        os.replace(live, old)
    os.replace(staging, live)
    shutil.rmtree(old, ignore_errors=True)
