"""Speed benchmark: load, query latency and document throughput, against baselines in the same process.

Every figure is a median over repeats on this machine, and each is paired with a baseline run
in the same process (teacher, bare backbone forward, fp32) so ratios survive a noisy machine.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np
import torch

from ..config import load_config
from ..models.assets import converted_gguf_dir, package_file
from ..models.load import load_encoder, quiet_transformers
from .texts import passages, queries


def percentile(values, q) -> float:
    return float(np.percentile(np.asarray(values), q))


def timed(fn, repeats: int = 3) -> float:
    """Median wall seconds of fn() over repeats."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def latencies(fn, items) -> list[float]:
    result = []
    for item in items:
        start = time.perf_counter()
        fn([item])
        result.append((time.perf_counter() - start) * 1000)
    return result


def bare_backbone_forward(encoder, texts):
    """The reference: the same token ids (+10 ordinary tokens) through the base model alone."""
    ids = encoder.token_ids(texts, encoder.document_instruction)
    tokenizer = encoder.backbone.tokenizer
    filler = tokenizer.eos_token_id
    with torch.inference_mode():
        for start in range(0, len(ids), encoder.batch_size):
            rows = [row + [filler] * encoder.adapter.n_tokens for row in ids[start:start + encoder.batch_size]]
            batch = tokenizer.pad({"input_ids": rows}, return_tensors="pt").to(encoder.backbone.device)
            encoder.backbone.model.base_model(**batch)


def first_load_seconds() -> float:
    """GGUF de-quantisation + conversion into a throwaway cache (what a fresh machine pays once)."""
    gguf = package_file("smollm2")
    previous = os.environ.get("GENRETRIEVE_HOME")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GENRETRIEVE_HOME"] = tmp
        try:
            start = time.perf_counter()
            converted_gguf_dir(gguf)
            return time.perf_counter() - start
        finally:
            if previous is None:
                os.environ.pop("GENRETRIEVE_HOME")
            else:
                os.environ["GENRETRIEVE_HOME"] = previous


def run_speed(config=None, n_queries: int = 50, n_docs: int = 64, cold: bool = True) -> dict:
    quiet_transformers()
    base = load_config(config)
    report = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "cuda": torch.cuda.is_available()}, "systems": {}}
    if cold and base.model.backbone == "packaged:smollm2":
        report["first_load_s"] = first_load_seconds()
    load_encoder(base)  # warm imports and the cache, so the next figure is the cached load alone
    report["cached_load_s"] = timed(lambda: load_encoder(base), repeats=3)
    qs, docs = queries(n_queries), passages(n_docs)
    dtypes = ["bfloat16", "float32"] if not torch.cuda.is_available() else ["bfloat16"]
    for dtype in dtypes:
        encoder = load_encoder(load_config(base, model__dtype=dtype))
        encoder.encode_queries(qs[:2])  # warm-up
        doc_tokens = np.mean([len(r) for r in encoder.token_ids(docs, encoder.document_instruction)])
        systems = {
            "gen": (encoder.encode_queries, encoder.encode_documents),
            "teacher": (encoder.teacher.encode, encoder.teacher.encode),
            "backbone (bare forward)": (lambda t: bare_backbone_forward(encoder, t),
                                        lambda t: bare_backbone_forward(encoder, t)),
        }
        for name, (encode_query, encode_docs) in systems.items():
            lat = latencies(encode_query, qs)
            docs_s = len(docs) / timed(lambda: encode_docs(docs))
            report["systems"][f"{name} ({dtype})"] = {
                "query_p50_ms": percentile(lat, 50), "query_p90_ms": percentile(lat, 90), "docs_per_s": docs_s}
        report["doc_tokens_mean"] = float(doc_tokens)
        gen, bare = report["systems"][f"gen ({dtype})"], report["systems"][f"backbone (bare forward) ({dtype})"]
        report[f"gen_vs_backbone_throughput ({dtype})"] = gen["docs_per_s"] / bare["docs_per_s"]
    return report


def speed_table(report: dict):
    from rich.table import Table

    table = Table(title=f"genretrieve bench speed ({report['machine']['cpus']} CPUs, "
                        f"{report['machine']['torch_threads']} torch threads, docs ~{report['doc_tokens_mean']:.0f} tokens)")
    for column in ("system", "query p50 ms", "query p90 ms", "docs/s"):
        table.add_column(column, justify="right" if column != "system" else "left")
    for name, row in report["systems"].items():
        table.add_row(name, f"{row['query_p50_ms']:.1f}", f"{row['query_p90_ms']:.1f}", f"{row['docs_per_s']:.1f}")
    notes = [f"cached load {report['cached_load_s']:.2f} s"]
    if "first_load_s" in report:
        notes.insert(0, f"first load (GGUF conversion) {report['first_load_s']:.1f} s")
    notes += [f"{k.replace('_', ' ')} = {v:.2f}" for k, v in report.items() if k.startswith("gen_vs_backbone")]
    table.caption = "; ".join(notes)
    return table
