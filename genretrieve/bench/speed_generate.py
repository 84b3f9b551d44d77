"""`bench speed` section generate: tokens/s of batched greedy answers (what bounds the training data).

The same prompts (real question-like texts, chat-framed as training frames them) are answered at
each batch size, one timed run each; tokens counted are the answers' tokens before EOS, so a batch
that keeps computing rows which already stopped shows up as fewer tokens/s. Batch size 1 runs on
a few prompts only (it is the slow baseline).
"""
from __future__ import annotations

import time

from ..models.generate import generate_answers
from .texts import queries

TARGET_TOKENS_PER_S = 150.0  # issue 17, SmolLM2 on a 2-core CPU


def generate_section(encoder, n_prompts: int = 32, max_new_tokens: int = 64, batch_sizes=(1, 8, 16, 32),
                     log=None) -> dict:
    log = log or (lambda msg: None)
    prompts = queries(n_prompts)
    generate_answers(encoder.backbone, prompts[:2], 4, batch_size=2)  # warm-up: first-call kernel setup
    rows = {}
    for size in batch_sizes:
        batch = prompts[:4] if size == 1 else prompts
        log(f"generate: {len(batch)} answers of <= {max_new_tokens} tokens, batch size {size}")
        tokens = []
        start = time.perf_counter()
        generate_answers(encoder.backbone, batch, max_new_tokens, batch_size=size, on_batch=lambda n, t: tokens.append(t))
        seconds = time.perf_counter() - start
        rows[str(size)] = {"answers": len(batch), "tokens": sum(tokens), "seconds": seconds,
                           "tokens_per_s": sum(tokens) / seconds}
    best = max(rows, key=lambda size: rows[size]["tokens_per_s"])
    return {"max_new_tokens": max_new_tokens, "batch_sizes": rows, "best_batch_size": int(best),
            "target_tokens_per_s": TARGET_TOKENS_PER_S, "pass": rows[best]["tokens_per_s"] >= TARGET_TOKENS_PER_S,
            "dtype": str(encoder.backbone.dtype).removeprefix("torch.")}


def generate_table(report: dict, make_table):
    rows = [[size, r["answers"], r["tokens"], f"{r['seconds']:.1f}", f"{r['tokens_per_s']:.1f}"]
            for size, r in report["batch_sizes"].items()]
    verdict = "pass" if report["pass"] else "miss"
    return make_table(f"generate: batched greedy answers (<= {report['max_new_tokens']} new tokens, {report['dtype']})",
                      ["batch size", "answers", "tokens", "s", "tokens/s"], rows,
                      f"best batch size {report['best_batch_size']}: "
                      f"{report['batch_sizes'][str(report['best_batch_size'])]['tokens_per_s']:.0f} tokens/s, "
                      f"target >= {report['target_tokens_per_s']:.0f}: {verdict}")
