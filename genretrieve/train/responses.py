"""The frozen LLM's own answers to training queries, generated once and cached in SQLite.

The cache key is the backbone fingerprint + the generation settings + the query text, so a
cache is reusable across training runs and never serves answers from another model. Answers
are committed after every batch: an interrupted generation resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from ..models.generate import generate_answers

Report = Callable[[int, int, float], None]  # (done, total, tokens per second)


def response_key(backbone_fp: str, settings: dict, query: str) -> str:
    blob = json.dumps([backbone_fp, settings, query], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    def __init__(self, path: Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = Database(path)
        if not self.db["responses"].exists():
            self.db["responses"].create({"key": str, "backbone": str, "settings": str, "query": str,
                                         "response": str}, pk="key")

    def get_many(self, keys: list[str]) -> dict[str, str]:
        found = {}
        for start in range(0, len(keys), 500):
            rows = self.db.query("SELECT key, response FROM responses WHERE key IN (SELECT value FROM json_each(?))",
                                 [json.dumps(keys[start:start + 500])])
            found.update({r["key"]: r["response"] for r in rows})
        return found

    def put_many(self, rows: list[dict]) -> None:
        with self.db.atomic():
            self.db["responses"].upsert_all(rows, pk="key")


def ensure_responses(encoder, queries: list[str], cache: ResponseCache, max_new_tokens: int = 128,
                     batch_size: int = 16, report: Report | None = None) -> tuple[list[str], dict]:
    """Answers for every query (cached or generated now) and generation stats."""
    settings = {"max_new_tokens": max_new_tokens, "greedy": True, "chat_template": True}
    keys = [response_key(encoder.backbone.fingerprint, settings, q) for q in queries]
    found = cache.get_many(list(dict.fromkeys(keys)))
    missing = list(dict.fromkeys(i for i, k in enumerate(keys) if k not in found))
    stats = {"cached": len(queries) - len(missing), "generated": 0, "tokens": 0, "seconds": 0.0}
    start = time.perf_counter()
    group = batch_size * 4  # commit every few batches: little is lost on an interrupt
    for offset in range(0, len(missing), group):
        idx = missing[offset:offset + group]
        tokens = []
        answers = generate_answers(encoder, [queries[i] for i in idx], max_new_tokens, batch_size,
                                   on_batch=lambda n, t: tokens.append(t))
        cache.put_many([{"key": keys[i], "backbone": encoder.backbone.fingerprint, "settings": json.dumps(settings),
                         "query": queries[i], "response": a} for i, a in zip(idx, answers)])
        found.update({keys[i]: a for i, a in zip(idx, answers)})
        stats["generated"] += len(idx)
        stats["tokens"] += sum(tokens)
        stats["seconds"] = time.perf_counter() - start
        if report:
            report(offset + len(idx), len(missing), stats["tokens"] / max(stats["seconds"], 1e-9))
    return [found[k] for k in keys], stats
