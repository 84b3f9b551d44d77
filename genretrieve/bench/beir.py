"""Load a retrieval set in the BEIR layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.

Strict on purpose: a malformed line, a missing field or a judgement that points at an unknown
document raises UsageError naming the file and line, since a silently skipped judgement would
quietly change every score. Only queries with judgements are kept; `limit` keeps the first N of
them in qrels-file order (deterministic) but always the whole corpus, so scores stay comparable.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError


@dataclass
class BeirData:
    corpus: dict[str, dict[str, str]]  # doc id -> {"title", "text"}
    queries: dict[str, str]  # query id -> text
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: gain}
    name: str = ""
    stats: dict = field(default_factory=dict)


def _read_jsonl(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict]]:
    if not path.is_file():
        raise UsageError(f"{path}: file not found (a BEIR folder needs corpus.jsonl, queries.jsonl, qrels/)")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise UsageError(f"{path}:{number}: expected a JSON object")
            missing = [key for key in required if key not in row]
            if missing:
                raise UsageError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
            rows.append((number, row))
    return rows


def _read_qrels(path: Path, corpus: dict, queries: dict) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise UsageError(f"{path}: file not found")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").split("\t")
            if number == 1 and parts[:2] == ["query-id", "corpus-id"]:
                continue  # the header line
            if not line.strip():
                continue
            if len(parts) != 3:
                raise UsageError(f"{path}:{number}: expected 3 tab-separated fields query-id corpus-id score")
            qid, doc, score = parts
            try:
                gain = int(score)
            except ValueError:
                raise UsageError(f"{path}:{number}: score {score!r} is not an integer") from None
            if qid not in queries:
                raise UsageError(f"{path}:{number}: unknown query id {qid!r}")
            if doc not in corpus:
                raise UsageError(f"{path}:{number}: unknown document id {doc!r}")
            qrels.setdefault(qid, {})[doc] = gain
    return qrels


def load_beir(folder: str | Path, split: str = "test", limit: int | None = None) -> BeirData:
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder (expected a BEIR dataset folder)")
    corpus: dict[str, dict[str, str]] = {}
    for _, row in _read_jsonl(folder / "corpus.jsonl", ("_id", "text")):
        corpus[str(row["_id"])] = {"title": str(row.get("title") or ""), "text": str(row["text"])}
    queries = {str(row["_id"]): str(row["text"])
               for _, row in _read_jsonl(folder / "queries.jsonl", ("_id", "text"))}
    qrels = _read_qrels(folder / "qrels" / f"{split}.tsv", corpus, queries)
    # judged queries only, and of those only the ones with something relevant to find
    kept = [qid for qid, judged in qrels.items() if any(g > 0 for g in judged.values())]
    if limit is not None:
        kept = kept[:limit]
    queries = {qid: queries[qid] for qid in kept}
    qrels = {qid: qrels[qid] for qid in kept}
    stats = {"documents": len(corpus), "queries": len(queries),
             "judgements": sum(len(j) for j in qrels.values()),
             "relevant_per_query": sum(sum(g > 0 for g in j.values()) for j in qrels.values()) / max(len(qrels), 1)}
    return BeirData(corpus, queries, qrels, folder.name, stats)


def doc_text(doc: dict[str, str]) -> str:
    """What every system embeds or indexes: title and text, as BEIR's own models concatenate them."""
    return f"{doc['title']}. {doc['text']}" if doc.get("title") else doc["text"]
