"""Chunk and file metadata for one index folder, kept in ``meta.sqlite`` via sqlite-utils.

Chunk ids double as FAISS ids, so the ``chunks`` table uses ``AUTOINCREMENT``: SQLite then
never hands out an id again after its row is deleted. Keyword search is FTS5/BM25 over an
external-content table kept in sync by triggers; the concession is that the user's text is
reduced to OR-ed quoted terms, so FTS5 operators (NEAR, column filters, prefix*) are unavailable.

Readers open the file read-only (a `mode=ro` URI) and never write, so a read-only index can be
searched. A file that is truncated or not SQLite raises DamagedIndex when opened, not mid-search.
A large file is committed in parts (`replace_file(first=..., last=...)`): until its last part
its `files` row carries size -1, so no later run takes it as unchanged, and a resumed run
appends after the parts already stored (`chunk_hashes_of`) instead of duplicating them.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sys

import numpy as np

if "pandas" not in sys.modules:  # sqlite-utils imports pandas when it can (~0.45 s of every cold search) only to
    sys.modules["pandas"] = None  # map its Timestamp type, which we never store: hide it while importing
    try:
        from sqlite_utils import Database
    finally:
        del sys.modules["pandas"]
else:
    from sqlite_utils import Database

from ..errors import DamagedIndex

SCHEMA_VERSION = 1
INCOMPLETE = -1  # `files.size` of a file whose last part is not committed yet

# sqlite-utils cannot declare AUTOINCREMENT, so this one table is created with plain DDL.
_CHUNKS_DDL = """
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    chunk_hash TEXT NOT NULL,
    text TEXT NOT NULL,
    start_char INTEGER,
    end_char INTEGER,
    start_line INTEGER,
    end_line INTEGER,
    page INTEGER,
    heading TEXT,
    metadata TEXT,
    vector BLOB
)
"""
_CHUNK_COLUMNS = ("path", "chunk_hash", "text", "start_char", "end_char",
                  "start_line", "end_line", "page", "heading", "metadata", "vector")


class Store:
    """SQLite metadata store of one index: files, chunks, FTS5 and key/value meta."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly or self.path.exists():
            check_intact(self.path)
        try:
            if readonly:
                self.db = Database(sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True))
                self._check_version()
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = Database(self.path)
                self._ensure_schema()
        except sqlite3.DatabaseError as exc:
            raise DamagedIndex(f"{self.path}: {exc}") from exc

    def _check_version(self) -> None:
        version = self.get_meta("schema_version")
        if version is not None and version != SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path}: schema_version {version}, this genretrieve expects {SCHEMA_VERSION}; rebuild the index")

    def _ensure_schema(self) -> None:
        db = self.db
        with db.atomic():
            if not db["meta"].exists():
                db["meta"].create({"key": str, "value": str}, pk="key")
            self._check_version()
            if not db["files"].exists():
                db["files"].create(
                    {"path": str, "sha256": str, "size": int, "mtime": float,
                     "n_chunks": int, "indexed_at": str},
                    pk="path")
            if not db["chunks"].exists():
                db.execute(_CHUNKS_DDL)
                db["chunks"].create_index(["path"])
                db["chunks"].create_index(["chunk_hash"])
            if self.get_meta("schema_version") != SCHEMA_VERSION:
                self.set_meta("schema_version", SCHEMA_VERSION)
        # enable_fts runs its own DDL; outside the block so it is never nested oddly.
        if not db["chunks_fts"].exists():
            db["chunks"].enable_fts(["text", "heading"], create_triggers=True)

    def transaction(self):
        """One SQLite transaction (nested calls join it): a batch of files commits, or none of it does."""
        return self.db.atomic()

    # -- key/value meta -------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self.db["meta"].upsert({"key": key, "value": json.dumps(value)}, pk="key")

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = list(self.db.query("SELECT value FROM meta WHERE key = ?", [key]))
        return json.loads(rows[0]["value"]) if rows else default

    # -- files and chunks -----------------------------------------------------------------
    def file_records(self) -> dict[str, dict]:
        """path -> {sha256, size, mtime}: what an index run compares the folder against."""
        return {r["path"]: r for r in self.db.query("SELECT path, sha256, size, mtime FROM files")}

    def file_record(self, path: str) -> dict | None:
        rows = list(self.db.query("SELECT path, sha256, size, mtime FROM files WHERE path = ?", [path]))
        return rows[0] if rows else None

    def touch_file(self, path: str, size: int, mtime: float) -> None:
        """Record a new mtime for a file whose content hash did not change (skips hashing next time)."""
        with self.db.atomic():
            self.db.execute("UPDATE files SET size = ?, mtime = ? WHERE path = ?", [size, mtime, path])

    # -- vectors: stored with their chunk, so one transaction commits text and vector together ------
    def generation(self) -> int:
        """Bumped by every change of chunks; the FAISS files record the generation they were built from."""
        return int(self.get_meta("generation", 0))

    def _bump_generation(self) -> None:
        self.set_meta("generation", self.generation() + 1)

    def vectors_for_hashes(self, hashes: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors of chunks with these content hashes: unchanged text is never re-encoded."""
        if not hashes:
            return {}
        rows = self.db.query(
            "SELECT chunk_hash, vector FROM chunks WHERE vector IS NOT NULL AND chunk_hash IN "
            "(SELECT value FROM json_each(?))", [json.dumps(hashes)])
        return {r["chunk_hash"]: np.frombuffer(r["vector"], dtype=np.float16) for r in rows}

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, float16 vectors) of every chunk, in id order."""
        rows = list(self.db.execute("SELECT id, vector FROM chunks WHERE vector IS NOT NULL ORDER BY id").fetchall())
        if not rows:
            return np.empty(0, np.int64), np.empty((0, 0), np.float16)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return ids, np.stack([np.frombuffer(r[1], dtype=np.float16) for r in rows])

    def vector_ids(self) -> np.ndarray:
        """Ids of the chunks that carry a vector, in id order (8 bytes each: the vectors stay on disk)."""
        rows = self.db.execute("SELECT id FROM chunks WHERE vector IS NOT NULL ORDER BY id").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def vectors_of(self, ids: np.ndarray, dim: int, batch: int = 50_000, missing_ok: bool = False) -> np.ndarray:
        """float16 vectors of these chunk ids, in the given order (ids without a vector are an error, or with
        `missing_ok` NaN rows: a reader whose FAISS file predates a concurrent deletion)."""
        ids = np.asarray(ids, np.int64)
        out = np.empty((len(ids), dim), np.float16)
        gone = np.full(dim, np.nan, np.float16)
        for start in range(0, len(ids), batch):
            part = ids[start:start + batch]
            found = dict(self.db.execute(
                "SELECT id, vector FROM chunks WHERE vector IS NOT NULL AND id IN (SELECT value FROM json_each(?))",
                [json.dumps(part.tolist())]).fetchall())
            if len(found) != len(part) and not missing_ok:
                raise KeyError(f"{len(part) - len(found)} chunk ids have no stored vector")
            out[start:start + len(part)] = np.stack([np.frombuffer(found[i], np.float16) if i in found else gone
                                                     for i in part.tolist()])
        return out

    def chunk_hashes_of(self, path: str) -> list[str]:
        """The content hashes of a file's stored chunks, in order: where an interrupted large file resumes."""
        return [r[0] for r in self.db.execute("SELECT chunk_hash FROM chunks WHERE path = ? ORDER BY id", [path])]

    def chunks_of(self, path: str) -> list[dict]:
        """A file's chunks in order, as `replace_file` takes them (metadata parsed, float16 vector): what merge copies."""
        rows = self.db.query(f"SELECT {', '.join(_CHUNK_COLUMNS[1:])} FROM chunks WHERE path = ? ORDER BY id", [path])
        return [{**row, "metadata": json.loads(row["metadata"] or "{}"),
                 "vector": None if row["vector"] is None else np.frombuffer(row["vector"], dtype=np.float16)}
                for row in rows]

    def vector_paths(self) -> tuple[np.ndarray, list[str]]:
        """(ids, paths) of the chunks that carry a vector, in id order: which file, hence which shard, each came from."""
        rows = self.db.execute("SELECT id, path FROM chunks WHERE vector IS NOT NULL ORDER BY id").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)), [r[1] for r in rows]

    def chunk_ids_for(self, path: str) -> list[int]:
        return [r["id"] for r in
                self.db.query("SELECT id FROM chunks WHERE path = ? ORDER BY id", [path])]

    def replace_file(self, path: str, sha256: str, size: int, mtime: float,
                     chunks: list[dict], first: bool = True, last: bool = True) -> list[int]:
        """Swap in the chunks of ``path`` atomically; returns their ids in input order.

        A chunk may carry ``id`` to keep the FAISS id of an unchanged chunk. That id must be
        new or belong to a chunk of this same path with the same ``chunk_hash``, so an id is
        never pointed at different content (a mismatch raises ValueError, nothing changes).
        A large file comes in parts: the first replaces the old chunks, later ones append, and
        until the last one the file is recorded as incomplete (size -1).
        """
        ids: list[int] = []
        with self.db.atomic():
            old = {r["id"]: r["chunk_hash"] for r in self.db.query(
                "SELECT id, chunk_hash FROM chunks WHERE path = ?", [path])}
            for c in chunks:
                cid = c.get("id")
                if cid is not None and cid in old and old[cid] != c["chunk_hash"]:
                    raise ValueError(f"chunk id {cid} of {path} reused for different content")
            if first:
                self.db.execute("DELETE FROM chunks WHERE path = ?", [path])
            for c in chunks:
                row = {"path": path, "chunk_hash": c["chunk_hash"], "text": c["text"],
                       "start_char": c.get("start_char"), "end_char": c.get("end_char"),
                       "start_line": c.get("start_line"), "end_line": c.get("end_line"),
                       "page": c.get("page"), "heading": c.get("heading"),
                       "metadata": json.dumps(c.get("metadata") or {}),
                       "vector": _to_blob(c.get("vector"))}
                cols = list(_CHUNK_COLUMNS)
                vals = [row[k] for k in cols]
                if c.get("id") is not None:
                    cols.insert(0, "id")
                    vals.insert(0, int(c["id"]))
                # Plain INSERT (no OR REPLACE): an id owned by another path must fail loudly.
                cur = self.db.execute(
                    f"INSERT INTO chunks ({', '.join(cols)}) VALUES "
                    f"({', '.join('?' * len(cols))})", vals)
                ids.append(int(cur.lastrowid))
            n_chunks = len(chunks) if first else len(chunks) + len(old)
            self.db["files"].upsert(
                {"path": path, "sha256": sha256, "size": size if last else INCOMPLETE,
                 "mtime": mtime if last else INCOMPLETE, "n_chunks": n_chunks,
                 "indexed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
                pk="path")
            self._bump_generation()
        return ids

    def remove_files(self, paths: list[str]) -> list[int]:
        removed: list[int] = []
        with self.db.atomic():
            for p in paths:
                removed.extend(self.chunk_ids_for(p))
                self.db.execute("DELETE FROM chunks WHERE path = ?", [p])
                self.db.execute("DELETE FROM files WHERE path = ?", [p])
            self._bump_generation()
        return removed

    def get_chunks(self, ids: list[int]) -> list[dict]:
        if not len(ids):
            return []
        # json_each passes any number of ids as one parameter (no 999-variable limit).
        rows = {r["id"]: r for r in self.db.query(
            "SELECT * FROM chunks WHERE id IN (SELECT value FROM json_each(?))",
            [json.dumps([int(i) for i in ids])])}
        out = []
        for i in ids:
            r = rows.get(int(i))
            if r is not None:
                r = dict(r)
                r.pop("vector", None)
                r["metadata"] = json.loads(r["metadata"]) if r["metadata"] else {}
                out.append(r)
        return out

    def all_chunk_ids(self) -> list[int]:
        return [r["id"] for r in self.db.query("SELECT id FROM chunks ORDER BY id")]

    def count_chunks(self) -> int:
        return self.db["chunks"].count

    def count_files(self) -> int:
        return self.db["files"].count

    # -- filtering and keyword search -----------------------------------------------------
    def ids_matching_path(self, pattern: str) -> list[int]:
        """Chunk ids whose path matches ``pattern`` under SQLite GLOB semantics.

        GLOB is case-sensitive and its ``*`` also crosses ``/``, so ``docs/*.md`` matches
        ``docs/a/b.md`` too. ``**`` is accepted for gitignore-style patterns: ``**/`` means
        "zero or more directories" (``**/*.md`` matches ``a.md`` and ``x/a.md``), any other
        ``**`` acts as ``*``. A leading ``./`` is dropped and a trailing ``/`` means
        "everything under this folder".
        """
        globs = _expand_glob(pattern)
        where = " OR ".join("path GLOB ?" for _ in globs)
        return [r["id"] for r in self.db.query(
            f"SELECT id FROM chunks WHERE {where} ORDER BY id", globs)]

    def keyword_search(self, query: str, k: int,
                       ids: list[int] | None = None) -> list[tuple[int, float]]:
        """BM25 keyword hits as (chunk_id, score), best first; higher score is better."""
        match = fts_query(query)
        if not match or k <= 0 or (ids is not None and not len(ids)):
            return []
        sql = ("SELECT chunks_fts.rowid AS id, bm25(chunks_fts) AS rank FROM chunks_fts "
               "WHERE chunks_fts MATCH ?")
        params: list[Any] = [match]
        if ids is not None:
            # Restrict inside the query so the top k are drawn from the allowed set only.
            sql += " AND chunks_fts.rowid IN (SELECT value FROM json_each(?))"
            params.append(json.dumps([int(i) for i in ids]))
        sql += " ORDER BY rank LIMIT ?"
        params.append(int(k))
        # bm25() is "lower is better"; negate so every scorer in genretrieve sorts the same way.
        return [(int(r["id"]), -float(r["rank"])) for r in self.db.query(sql, params)]

    def close(self) -> None:
        self.db.close()


def check_intact(path: Path) -> None:
    """Raise DamagedIndex for a missing, non-SQLite or truncated file: O(1), from the 100-byte header.

    The header's page count is trusted only when valid (its version-valid-for number equals the
    change counter) and no WAL file holds pages beyond it."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            header = handle.read(100)
    except OSError as exc:
        raise DamagedIndex(f"{path}: {exc.strerror or exc}") from exc
    if size == 0:
        return  # a new, empty database
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise DamagedIndex(f"{path} is not an SQLite database")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    valid = header[24:28] == header[92:96] and not Path(f"{path}-wal").exists()
    if valid and size < pages * page_size:
        raise DamagedIndex(f"{path} is truncated ({size:,} of {pages * page_size:,} bytes)")


def _to_blob(vector) -> bytes | None:
    return None if vector is None else np.asarray(vector, dtype=np.float16).tobytes()


def fts_query(text: str) -> str:
    """Turn free text into a safe FTS5 query: each whitespace term quoted, joined by OR.

    Inside quotes FTS5 treats everything as tokens (``"C++"`` is the phrase ``c``), so no
    punctuation can raise a syntax error; terms without a letter or digit are dropped.
    """
    terms = [t for t in text.split() if re.search(r"\w", t)]
    seen = dict.fromkeys(t.lower() for t in terms)  # dedupe, keep order
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in seen)


def _expand_glob(pattern: str) -> list[str]:
    """Rewrite a pattern with ``**`` into equivalent plain SQLite GLOB patterns."""
    p = pattern.strip()
    while p.startswith("./"):
        p = p[2:]
    if p.endswith("/"):
        p += "*"
    if p.count("**/") > 4:  # keep the 2**n expansion small; "*" is the near-superset
        p = p.replace("**/", "*")
    parts = p.split("**/")
    # Each "**/" is either dropped (zero directories) or becomes "*/" (one or more).
    out = []
    for choice in itertools.product(("", "*/"), repeat=len(parts) - 1):
        s = parts[0] + "".join(c + part for c, part in zip(choice, parts[1:]))
        out.append(re.sub(r"\*\*+", "*", s))
    return list(dict.fromkeys(out))
