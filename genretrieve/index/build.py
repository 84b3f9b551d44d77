"""Index a folder: find what changed, read and chunk it, encode only new content, commit per batch.

SQLite is the single source of truth: each chunk row carries its float16 vector, and every
batch of files is committed in one transaction, so an interrupted run leaves each file either
fully old or fully new and the next run resumes where it stopped. The FAISS file is derived
from those rows at the end and stamped with the store's generation; a stale one is rebuilt.
`--rebuild` builds a fresh index beside the old one and swaps it in only when complete.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..config import Config
from ..errors import UsageError
from .chunking import chunk_document, whole_document
from .folder import IndexFolder, index_identity
from .readers import UnreadableFile, is_supported, iter_files, read_file

Report = Callable[[str, int, int], None]  # (stage, done, total)
ENCODE_BATCH = 256  # chunks per commit: big enough to batch the encoder, small enough to lose little on a crash


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


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def document_encoder(encoder, doc_encoder: str):
    if doc_encoder == "teacher":
        if not encoder.teacher_space_matches:
            raise UsageError("this adapter (imported from the paper) does not embed into the loaded teacher's space, "
                             "so documents must be encoded by the adapter itself: use --doc-encoder gen")
        return encoder.teacher.encode
    if doc_encoder == "gen":
        return encoder.encode_documents
    raise UsageError(f"--doc-encoder must be teacher or gen, not {doc_encoder!r}")


def build_index(root: Path, index_dir: Path, encoder, config: Config, rebuild: bool = False,
                no_chunk: bool = False, report: Report | None = None) -> IndexSummary:
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
    identity = index_identity(encoder, config, no_chunk)
    target = index_dir.with_name(f".{index_dir.name}.rebuild") if rebuild else index_dir
    if rebuild and target.exists() and not IndexFolder(target).matches(identity):
        shutil.rmtree(target)  # a stale half-rebuild from other settings; the live index is untouched
    folder = IndexFolder.create_or_open(target, identity, config)
    store = folder.store

    known = store.file_records()
    present, todo = set(), []
    for path in supported:
        rel = path.relative_to(root).as_posix() if path != root else path.name
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

    pending: list[tuple[str, str, os.stat_result, list[dict]]] = []

    def flush():
        texts = {c["chunk_hash"]: c["text"] for *_, chunks in pending for c in chunks}
        vectors = store.vectors_for_hashes(list(texts))
        new = [h for h in texts if h not in vectors]
        if new:
            encoded = encode([texts[h] for h in new])
            vectors.update(zip(new, encoded.astype(np.float16)))
            summary.chunks_encoded += len(new)
        with store.db.atomic():
            for rel, digest, stat, chunks in pending:
                for c in chunks:
                    c["vector"] = vectors[c["chunk_hash"]]
                store.replace_file(rel, digest, stat.st_size, stat.st_mtime, chunks)
                summary.chunks_added += len(chunks)
                summary.files_indexed += 1
        pending.clear()

    tokenizer = encoder.backbone.tokenizer
    for done, (path, rel, digest, stat) in enumerate(todo, 1):
        try:
            documents = read_file(path, root)
        except UnreadableFile as exc:
            summary.files_failed.append({"path": rel, "error": str(exc)})
            continue
        chunks = []
        for doc in documents:
            pieces = whole_document(doc) if no_chunk else chunk_document(
                doc, tokenizer, config.index.chunk_tokens, config.index.chunk_overlap)
            chunks += [{**asdict(piece), "metadata": doc.metadata,
                        "chunk_hash": sha256_bytes(piece.text.encode())} for piece in pieces]
        pending.append((rel, digest, stat, chunks))
        if sum(len(c) for *_, c in pending) >= ENCODE_BATCH:
            flush()
        report("encoding", done, len(todo))
    if pending:
        flush()

    gone = sorted(set(known) - present)
    if gone:
        summary.chunks_removed = len(store.remove_files(gone))
        summary.files_removed = gone
    summary.chunks_total = store.count_chunks()
    report("writing vectors", 0, 1)
    folder.write_vectors(config.index.kind)
    folder.close()
    if rebuild:
        swap_in(target, index_dir)
    summary.seconds = time.perf_counter() - start
    return summary


def swap_in(staging: Path, live: Path) -> None:
    """Replace the live index folder with a complete one; the old folder is removed only afterwards."""
    old = live.with_name(f".{live.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if live.exists():
        os.replace(live, old)
    os.replace(staging, live)
    shutil.rmtree(old, ignore_errors=True)
