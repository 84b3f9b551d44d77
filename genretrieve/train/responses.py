"""The frozen LLM's own answers to training queries, generated once and cached in SQLite.

The cache key is the backbone fingerprint + the generation settings + the query text, so a
cache is reusable across training runs and never serves answers from another model. Answers
are committed after every batch: an interrupted generation resumes where it stopped. Answers
also ship with the package (`data/answers/*.jsonl.gz`, rows of the cache): answering is the
expensive part of training on a CPU, so a retrain on a new machine starts from them.
"""
from __future__ import annotations

import gzip
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

    def import_file(self, path: Path) -> int:
        """Add the rows of a shipped answers file that the cache lacks; returns how many rows it has."""
        with gzip.open(path, "rt", encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        with self.db.atomic():
            self.db["responses"].insert_all(rows, pk="key", ignore=True)
        return len(rows)

    def rows(self, keys: list[str]) -> list[dict]:
        """Whole cache rows for these keys, in their order (what an answers file holds)."""
        found = {}
        for start in range(0, len(keys), 500):
            for row in self.db.query("SELECT * FROM responses WHERE key IN (SELECT value FROM json_each(?))",
                                     [json.dumps(keys[start:start + 500])]):
                found[row["key"]] = row
        return [found[k] for k in keys if k in found]


def cached_generation(cache: ResponseCache, backbone_fp: str, settings: dict, inputs: list[str], generate,
                      group: int = 64, report: Report | None = None) -> tuple[list[str], dict]:
    """One output per input, keyed by (backbone, settings, input text): cached ones are read, the rest
    generated `group` at a time and committed after each group, so an interrupt loses at most one.

    `generate(texts) -> (outputs, new_tokens)`; a repeated input is generated once.
    """
    keys = [response_key(backbone_fp, settings, q) for q in inputs]
    found = cache.get_many(list(dict.fromkeys(keys)))
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    missing = [i for key, i in first.items() if key not in found]
    stats = {"cached": len(inputs) - len(missing), "generated": 0, "tokens": 0, "seconds": 0.0}
    start = time.perf_counter()
    for offset in range(0, len(missing), group):
        idx = missing[offset:offset + group]
        outputs, tokens = generate([inputs[i] for i in idx])
        cache.put_many([{"key": keys[i], "backbone": backbone_fp, "settings": json.dumps(settings), "query": inputs[i],
                         "response": text} for i, text in zip(idx, outputs)])
        found.update({keys[i]: text for i, text in zip(idx, outputs)})
        stats["generated"] += len(idx)
        stats["tokens"] += tokens
        stats["seconds"] = time.perf_counter() - start
        if report:
            report(offset + len(idx), len(missing), stats["tokens"] / max(stats["seconds"], 1e-9))
    return [found[k] for k in keys], stats


SHIPPED_ANSWERS = Path(__file__).resolve().parent.parent / "data" / "answers"


def answer_settings(max_new_tokens: int) -> dict:
    return {"max_new_tokens": max_new_tokens, "greedy": True, "chat_template": True}


def ensure_responses(encoder, queries: list[str], cache: ResponseCache, max_new_tokens: int = 128,
                     batch_size: int = 16, report: Report | None = None) -> tuple[list[str], dict]:
    """The backbone's answer to every query (cached, shipped, or generated now) and generation stats."""
    settings = answer_settings(max_new_tokens)
    for path in sorted(SHIPPED_ANSWERS.glob("*.jsonl.gz")):
        cache.import_file(path)

    def generate(texts: list[str]) -> tuple[list[str], int]:
        tokens: list[int] = []
        answers = generate_answers(encoder.backbone, texts, max_new_tokens, batch_size, on_batch=lambda n, t: tokens.append(t))
        return answers, sum(tokens)

    # commit every few batches: little is lost on an interrupt
    return cached_generation(cache, encoder.backbone.fingerprint, settings, queries, generate, batch_size * 4, report)
