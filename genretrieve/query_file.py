"""Read a file of queries, the one format for every command that takes one (search, train, the safety commands).

- `.jsonl`: one JSON object per line with the query in `text` (or `query`) and an optional `_id`;
- `.csv`: a header naming a `text` (or `query`) column, and optionally an `_id` column;
- anything else (`.txt`): one query per line.

Blank queries are skipped. Each query is `{"text": ...}`, plus `"id"` when the file gives an `_id`
(search numbers the others by their place in the file). A file that cannot be read, a malformed
line (named as path:line) or a file with no query is a UsageError (exit 2), raised before any
model loads.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from .errors import UsageError

TEXT_KEYS = ("text", "query")
FORMATS = ".txt (one query per line), .jsonl (`text` or `query`, optional `_id`) or .csv (a `text` or `query` column)"


def read_query_file(path: Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"query file {path} does not exist")
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path} as UTF-8 text: {exc}") from exc
    if path.suffix == ".jsonl":
        rows = _jsonl(path, raw)
    elif path.suffix == ".csv":
        rows = _csv(path, raw)
    else:
        rows = [{"text": line} for line in raw.splitlines()]
    queries = [{"text": row["text"].strip(), **({"id": str(row["_id"])} if row.get("_id") not in (None, "") else {})}
               for row in rows if row["text"].strip()]
    if not queries:
        raise UsageError(f"{path} holds no queries; give {FORMATS}")
    return queries


def _jsonl(path: Path, raw: str) -> list[dict]:
    rows = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise UsageError(f"{path}:{number}: not JSON ({exc}); each line must be an object with a 'text' field") from exc
        text = _text(record)
        if text is None:
            raise UsageError(f"{path}:{number}: expected a JSON object with a 'text' (or 'query') string")
        rows.append({"text": text, "_id": record.get("_id")})
    return rows


def _csv(path: Path, raw: str) -> list[dict]:
    reader = csv.DictReader(raw.splitlines())
    column = next((c for c in TEXT_KEYS if c in (reader.fieldnames or [])), None)
    if column is None:
        raise UsageError(f"{path}: needs a 'text' or 'query' column (its header: {', '.join(reader.fieldnames or [])})")
    return [{"text": row[column] or "", "_id": row.get("_id")} for row in reader]


def _text(record) -> str | None:
    if not isinstance(record, dict):
        return None
    text = next((record[key] for key in TEXT_KEYS if key in record), None)
    return text if isinstance(text, str) else None
