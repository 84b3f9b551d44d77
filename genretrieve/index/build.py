"""Index a folder: find what changed, read and chunk it, encode only new content, commit per batch.

SQLite is the single source of truth: each chunk row carries its float16 vector, and every
batch of about ENCODE_BATCH chunks is committed in one transaction, so an interrupted run loses
at most one batch and the next run resumes where it stopped. A file larger than a batch is
committed in parts, marked incomplete until its last part (store.py); a resumed run appends
after the stored parts, so a kill inside a 20 MB file loses one batch, not the file. Progress
is reported in chunks. One writer at a time (lock.py); `preflight` runs every check that needs
no model (paths, the --index folder, the root it holds) before the models load. The FAISS file
is derived from the rows at the end and stamped with the store's generation; a stale one is rebuilt.
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

from ..atomic import replace_folder
from ..config import Config, IndexConfig
from ..errors import GenretrieveError, UsageError
from .chunking import chunk_documents, whole_document
from .folder import MANIFEST, IndexFolder, check_index_target, check_kind, index_identity
from .lock import writer_lock
from .readers import UnreadableFile, iter_files, read_file, skip_reason
from .shards import SHARDS, discard_staging, listing_fingerprint, mark_shard_complete, shard_dir, shard_of
from .store import INCOMPLETE

Report = Callable[[str, int, int], None]  # (stage, done, total)
ENCODE_BATCH = 256  # chunks per commit: big enough to batch the encoder, small enough to lose little on a crash
Todo = tuple[Path, str, str, os.stat_result]  # (path, rel, sha256, stat) of a file to (re)index
# files (or parts of one: first, last) ready to commit, chunks carrying "vector"; a 4-tuple is a whole file
Batch = list[tuple]  # (rel, sha256, stat, chunks[, first, last])


@dataclass
class IndexSummary:
    files_seen: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    files_skipped: int = 0  # len(skipped)
    skipped: list[dict] = field(default_factory=list)  # {"path", "reason"}: unsupported, binary, dangling link, ...
    files_failed: list[dict] = field(default_factory=list)  # {"path", "error"}
    bad_records: list[dict] = field(default_factory=list)  # {"path", "line", "error"}: JSONL lines left out
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


def chunk_file(path: Path, root: Path, tokenizer, index: IndexConfig, no_chunk: bool,
               problems: list[dict] | None = None) -> list[dict]:
    """The chunks of one file, in order (raises UnreadableFile); shared by every engine so chunks match."""
    docs = list(read_file(path, root, problems))  # one tokenizer call for all of a file's documents (JSONL records, pages)
    pieces = [whole_document(doc) for doc in docs] if no_chunk else chunk_documents(
        docs, tokenizer, index.chunk_tokens, index.chunk_overlap)
    return [{**asdict(piece), "metadata": doc.metadata, "chunk_hash": sha256_bytes(piece.text.encode())}
            for doc, doc_pieces in zip(docs, pieces) for piece in doc_pieces]


def local_producer(root: Path, encoder, encode, config: Config, no_chunk: bool, store) -> Producer:
    """Read, chunk and encode in this process; a chunk whose text the store holds reuses its vector.

    Files are cut into parts of at most ENCODE_BATCH chunks; each yielded batch holds about that
    many chunks. A file the store holds incomplete with the same content resumes after its stored
    parts (the same chunking gives the same chunks, compared by hash)."""
    def produce(todo: list[Todo], summary: IndexSummary, report: Report) -> Iterator[Batch]:
        pending: Batch = []
        counts = {"done": 0, "known": 0}

        def encode_pending() -> Batch:
            texts = {c["chunk_hash"]: c["text"] for *_, chunks, _, _ in pending for c in chunks if "vector" not in c}
            vectors = store.vectors_for_hashes(list(texts))
            new = [h for h in texts if h not in vectors]
            if new:
                vectors.update(zip(new, encode([texts[h] for h in new]).astype(np.float16)))
                summary.chunks_encoded += len(new)
            for *_, chunks, _, _ in pending:
                for c in chunks:
                    if "vector" not in c:
                        c["vector"] = vectors[c["chunk_hash"]]
                counts["done"] += len(chunks)
            return list(pending)

        for number, (path, rel, digest, stat) in enumerate(todo, 1):
            try:
                chunks = chunk_file(path, root, encoder.backbone.tokenizer, config.index, no_chunk, summary.bad_records)
            except UnreadableFile as exc:
                summary.files_failed.append({"path": rel, "error": str(exc)})
                continue
            stored = resume_point(store, rel, digest, chunks)
            if len(chunks) > ENCODE_BATCH:  # in parts: the first deletes the file's old rows, so take their vectors now
                reuse = store.vectors_for_hashes([c["chunk_hash"] for c in chunks[stored:]])
                for c in chunks[stored:]:
                    if c["chunk_hash"] in reuse:
                        c["vector"] = reuse[c["chunk_hash"]]
            counts["known"] += len(chunks)
            counts["done"] += stored
            report(f"encoding chunks (file {number}/{len(todo)})", counts["done"], counts["known"])
            position, first = stored, stored == 0
            while True:
                room = ENCODE_BATCH - sum(len(c) for *_, c, _, _ in pending)
                part = chunks[position:position + max(room, 1)]
                position += len(part)
                pending.append((rel, digest, stat, part, first, position >= len(chunks)))
                first = False
                if sum(len(c) for *_, c, _, _ in pending) >= ENCODE_BATCH:
                    batch, pending = encode_pending(), []
                    yield batch
                    report(f"encoding chunks (file {number}/{len(todo)})", counts["done"], counts["known"])
                if position >= len(chunks):
                    break
        if pending:
            yield encode_pending()
        report(f"encoding chunks (file {len(todo)}/{len(todo)})", counts["done"], counts["known"])
    return produce


def resume_point(store, rel: str, digest: str, chunks: list[dict]) -> int:
    """How many leading chunks of `rel` an interrupted run already committed (0: start the file afresh)."""
    record = store.file_record(rel)
    if not record or record["size"] != INCOMPLETE or record["sha256"] != digest:
        return 0
    stored = store.chunk_hashes_of(rel)
    return len(stored) if [c["chunk_hash"] for c in chunks[:len(stored)]] == stored else 0


def preflight(root: Path, index_dir: Path, rebuild: bool = False, shard: tuple[int, int] | None = None) -> None:
    """Every check an index run can make without the models: the input, the --index folder, the root it holds."""
    root, index_dir = Path(root), Path(index_dir)
    if not root.exists():
        raise UsageError(f"{root} does not exist")
    check_index_target(index_dir)
    target = shard_dir(index_dir, *shard) if shard else index_dir
    check_index_target(target)
    if not rebuild and (target / MANIFEST).exists():
        folder = IndexFolder(target, readonly=True)  # a damaged manifest or database says so here (DamagedIndex)
        try:
            folder.store
            if str(root.resolve()) not in (folder.manifest.get("roots") or [str(root.resolve())]):
                folder.claim_root(root)  # raises, naming the choices
        finally:
            folder.close()
    if not any(skip_reason(p) is None for p in iter_files(root)):
        raise UsageError(f"{root} has no supported files (.txt .md .rst .html .htm .pdf .jsonl); nothing indexed")


def build_index(root: Path, index_dir: Path, encoder, config: Config, rebuild: bool = False,
                no_chunk: bool = False, report: Report | None = None, shard: tuple[int, int] | None = None,
                produce: Producer | None = None, staged: bool = False) -> IndexSummary:
    root, index_dir = Path(root), Path(index_dir)
    preflight(root, index_dir, rebuild, shard)
    encode = document_encoder(encoder, config.index.doc_encoder)  # refuse before any folder is created
    check_kind(config.index.kind)
    with writer_lock(shard_dir(index_dir, *shard) if shard else index_dir):
        return _build_locked(root, index_dir, encoder, encode, config, rebuild, no_chunk,
                             report or (lambda stage, done, total: None), shard, produce, staged)


def _build_locked(root: Path, index_dir: Path, encoder, encode, config: Config, rebuild: bool, no_chunk: bool,
                  report: Report, shard: tuple[int, int] | None, produce: Producer | None,
                  staged: bool) -> IndexSummary:
    start = time.perf_counter()
    summary = IndexSummary()
    paths = list(iter_files(root, summary.skipped))
    supported = []
    for path in paths:
        reason = skip_reason(path)
        if reason:
            summary.skipped.append({"path": rel_path(path, root), "reason": reason})
        else:
            supported.append(path)
    summary.files_seen, summary.files_skipped = len(paths), len(summary.skipped)
    if not supported:
        raise UsageError(f"{root} has no supported files (.txt .md .rst .html .htm .pdf .jsonl); nothing indexed")

    identity = index_identity(encoder, config, no_chunk)
    listing = None
    if shard:  # every shard lists the whole folder, so merge can check they all saw the same one
        listing = listing_fingerprint([rel_path(p, root) for p in supported])
        supported = [p for p in supported if shard_of(rel_path(p, root), shard[1]) == shard[0]]
        index_dir = shard_dir(index_dir, *shard)
    target = index_dir
    if rebuild or staged:
        target = index_dir.with_name(f".{index_dir.name}.{'rebuild' if rebuild else 'staging'}")
    if rebuild and target.exists() and not _resumable(target, identity, root):
        discard_staging(target, index_dir)  # a stale half-rebuild from other settings; the live index is untouched
    elif staged and not rebuild:
        discard_staging(target, index_dir)  # always start from a fresh copy of the live index
        if (index_dir / MANIFEST).exists():
            shutil.copytree(index_dir, target, ignore=lambda d, names: [SHARDS] if Path(d) == index_dir else [])
    folder = IndexFolder.create_or_open(target, identity, config, roots=[str(root.resolve())])
    folder.claim_root(root)
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
        if record and record["sha256"] == digest and record["size"] != INCOMPLETE:
            store.touch_file(rel, stat.st_size, stat.st_mtime)
            summary.files_unchanged += 1
            continue
        todo.append((path, rel, digest, stat))

    produce = produce or local_producer(root, encoder, encode, config, no_chunk, store)
    for batch in produce(todo, summary, report):
        with store.transaction():
            for rel, digest, stat, chunks, *part in batch:
                first, last = part or (True, True)
                store.replace_file(rel, digest, stat.st_size, stat.st_mtime, chunks, first=first, last=last)
                summary.chunks_added += len(chunks)
                summary.files_indexed += last

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


def _resumable(staging: Path, identity: dict, root: Path) -> bool:
    """A half-done rebuild can be resumed if it was made with the same settings from the same root."""
    try:
        folder = IndexFolder(staging)
    except GenretrieveError:
        return False
    roots = folder.manifest.get("roots") or []
    return folder.matches(identity) and (not roots or str(root.resolve()) in roots)


def swap_in(staging: Path, live: Path) -> None:
    """Replace the live index folder with a complete one; the old folder is removed only afterwards.

    Shards outlive the index merged from them, so they move into the new folder first: at every
    moment they sit in either the live folder or the staging one (where merge looks for them).
    """
    if (live / SHARDS).is_dir() and not (staging / SHARDS).exists():
        os.replace(live / SHARDS, staging / SHARDS)
    replace_folder(staging, live)
