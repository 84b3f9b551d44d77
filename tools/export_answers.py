"""Write the backbone's cached answers for a config's training queries into a shipped data file.

Answers cost most of a training run on a CPU; shipping them lets `genretrieve train` on a new
machine start from them (train/responses.py imports every data/answers/*.jsonl.gz into the cache).
Rebuild: run `genretrieve train` (which generates and caches the answers), then
    python tools/export_answers.py --name smollm2 [--config CONFIG] [--max-queries N] [--max-natural-questions M]
It exports the answers of the first N pool queries and M natural questions in the order `train`
picks them, as far as the cache holds them, with a provenance file beside; a file may cover more
than the config trains on, so a later retrain on more questions generates nothing either.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from genretrieve.config import load_config
from genretrieve.models.assets import home
from genretrieve.models.load import load_encoder
from genretrieve.train.responses import SHIPPED_ANSWERS, ResponseCache, answer_settings, response_key
from genretrieve.train.run import choose_queries, machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="file name: data/answers/NAME.jsonl.gz")
    parser.add_argument("--config", default=None)
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--max-natural-questions", type=int, default=None)
    args = parser.parse_args()
    config = load_config(args.config, train__max_queries=args.max_queries,
                         train__max_natural_questions=args.max_natural_questions)
    encoder = load_encoder(config)
    queries, source = choose_queries(config, None)
    settings = answer_settings(config.train.max_new_tokens)
    keys = [response_key(encoder.backbone.fingerprint, settings, q["text"]) for q in queries]
    rows = ResponseCache(home() / "responses.sqlite").rows(keys)
    SHIPPED_ANSWERS.mkdir(parents=True, exist_ok=True)
    path = SHIPPED_ANSWERS / f"{args.name}.jsonl.gz"
    payload = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    path.write_bytes(gzip.compress(payload, mtime=0))
    provenance = {
        "file": path.name, "rows": len(rows), "of_queries": len(queries), "query_source": source,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "backbone": {"id": encoder.backbone.model_id, "fingerprint": encoder.backbone.fingerprint},
        "settings": settings, "machine": machine(encoder),
        "command": f"python tools/export_answers.py --name {args.name}"
                   + (f" --config {args.config}" if args.config else "")
                   + (f" --max-queries {args.max_queries}" if args.max_queries else "")
                   + (f" --max-natural-questions {args.max_natural_questions}" if args.max_natural_questions else ""),
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (SHIPPED_ANSWERS / f"{args.name}.provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"{len(rows)} answers -> {path}")


if __name__ == "__main__":
    main()
