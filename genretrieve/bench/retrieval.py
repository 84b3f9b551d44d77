"""Retrieval benchmark: every system over one BEIR folder, scored with nDCG@10, recall@10/100, MRR@10.

Quality comes from one batched run per system; query latency is measured apart, one query at a
time on a small fixed sample (documents already encoded), because batching hides what a user
waits for. Per-query nDCG@10 is kept in the report so two systems can be compared query by query.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import UsageError
from ..safety import SafetyProbe, load_probe
from .beir import doc_text, load_beir
from .metrics import mean, mrr_at_k, ndcg_at_k, recall_at_k
from .report import write_report as report_files
from .systems import DOC_SPACE, FILTER, SYSTEMS, Workspace, blocked, check_systems, probe_flags, split_system

DEVSET = Path(__file__).resolve().parent.parent / "data" / "devset"
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def describe_encoder(encoder) -> dict:
    """Ids and fingerprints that say which models produced the figures (tolerant of test fakes)."""
    if encoder is None:
        return {}
    card = getattr(encoder, "card", {}) or {}
    return {"backbone": getattr(encoder.backbone, "model_id", "?"), "teacher": getattr(encoder.teacher, "model_id", "?"),
            "adapter": card.get("fingerprint"), "adapter_trained": card.get("trained"),
            "device": str(getattr(encoder.backbone, "device", "cpu"))}


def adapter_probe(encoder) -> SafetyProbe:
    probe = load_probe(encoder.card.get("path"))
    if probe is None:
        raise UsageError("the +filter systems need the adapter's safety probe (safety.json), and this adapter has none")
    return probe


def run_retrieval(folder: str | Path | None, encoder, systems: Sequence[str] | None = None, limit: int | None = None,
                  hybrid_weight: float = 0.1, latency_queries: int = 20,
                  log: Callable[[str], None] | None = None) -> dict:
    """Score each system on the folder's queries (the shipped dev set when folder is None)."""
    systems = list(systems or SYSTEMS)
    check_systems(systems, SYSTEMS)
    if encoder is None and any(s != "bm25" for s in systems):
        raise UsageError("only bm25 runs without an encoder")
    data = load_beir(folder or DEVSET, limit=limit)
    doc_ids = list(data.corpus)
    workspace = Workspace(encoder, [doc_text(data.corpus[d]) for d in doc_ids], hybrid_weight)
    qids = list(data.queries)
    texts = [data.queries[q] for q in qids]
    report = {"dataset": {"name": data.name, "path": str(folder or DEVSET), **data.stats},
              "settings": {"hybrid_weight": hybrid_weight, "limit": limit, "latency_queries": min(latency_queries, len(qids)),
                           "top_k": workspace.k},
              "machine": {"cpus": os.cpu_count()}, "encoder": describe_encoder(encoder), "systems": {}, "per_query": {}}
    probe, flags = None, None
    for system in systems:
        if log:
            log(f"{system}: encoding and ranking {len(texts)} queries")
        unfiltered = system.removesuffix(FILTER)
        space = DOC_SPACE[split_system(system)[0]]
        if space != "bm25":
            workspace.doc_matrix(space)  # document encoding is timed apart from the queries
        start = time.perf_counter()
        ranked = [[doc_ids[i] for i in row] for row in workspace.rank(unfiltered, texts)]
        if unfiltered != system:
            probe = probe or adapter_probe(encoder)
            flags = probe_flags(probe, encoder, texts) if flags is None else flags
            ranked = blocked(ranked, flags)
        seconds = time.perf_counter() - start
        scores = {"ndcg@10": [ndcg_at_k(r, data.qrels[q], 10) for q, r in zip(qids, ranked)],
                  "recall@10": [recall_at_k(r, data.qrels[q], 10) for q, r in zip(qids, ranked)],
                  "recall@100": [recall_at_k(r, data.qrels[q], 100) for q, r in zip(qids, ranked)],
                  "mrr@10": [mrr_at_k(r, data.qrels[q], 10) for q, r in zip(qids, ranked)]}
        row = {name: mean(values) for name, values in scores.items()}
        row["queries_s"] = seconds
        # the probe's own encoding counts (search reuses a gen query vector it already has, so gen and
        # hybrid +filter figures overstate by one gen encoding)
        also = (lambda t: probe_flags(probe, encoder, t)) if unfiltered != system else None
        row["query_latency_ms"] = workspace.latency_ms(unfiltered, texts[:latency_queries], also) if latency_queries else None
        row["doc_space"] = space
        if unfiltered != system:
            row["blocked"] = float(flags.mean())
        report["systems"][system] = row
        report["per_query"][system] = dict(zip(qids, scores["ndcg@10"]))
    report["doc_encode_s"] = dict(workspace.doc_seconds)
    try:
        import torch

        report["machine"]["torch_threads"] = torch.get_num_threads()
    except ImportError:  # bm25-only runs need no torch
        pass
    return report


def retrieval_table(report: dict):
    from rich.table import Table

    data = report["dataset"]
    table = Table(title=f"genretrieve bench retrieval: {data['name']} ({data['documents']} docs, "
                        f"{data['queries']} queries)")
    table.add_column("system", no_wrap=True)
    for column in (*METRICS, "query ms (p50)", "doc space"):
        table.add_column(column, justify="right")
    for name, row in report["systems"].items():
        latency = "-" if row["query_latency_ms"] is None else f"{row['query_latency_ms']:.1f}"
        table.add_row(name, *(f"{row[m]:.3f}" for m in METRICS), latency, row["doc_space"])
    encode = ", ".join(f"{space} {s:.1f} s" for space, s in report.get("doc_encode_s", {}).items())
    table.caption = f"hybrid weight {report['settings']['hybrid_weight']}; document encoding: {encode}"
    return table


def markdown(report: dict) -> str:
    data, settings = report["dataset"], report["settings"]
    machine = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in report["machine"].items())
    lines = [f"# Retrieval benchmark: {data['name']}", "",
             f"{data['documents']} documents, {data['queries']} queries, {data['relevant_per_query']:.2f} relevant "
             f"per query (`{data['path']}`). Encoder: {json.dumps(report['encoder'])}. "
             f"Hybrid weight {settings['hybrid_weight']}; latency: median over {settings['latency_queries']} single "
             f"queries, documents already encoded; {machine}.", "",
             "| system | " + " | ".join(METRICS) + " | query ms (p50) | all queries s | doc space |",
             "|---" * (len(METRICS) + 4) + "|"]
    for name, row in report["systems"].items():
        latency = "-" if row["query_latency_ms"] is None else f"{row['query_latency_ms']:.1f}"
        lines.append(f"| {name} | " + " | ".join(f"{row[m]:.3f}" for m in METRICS)
                     + f" | {latency} | {row['queries_s']:.1f} | {row['doc_space']} |")
    lines += ["", "Document encoding: " + ", ".join(f"{k} {v:.1f} s" for k, v in report["doc_encode_s"].items()), ""]
    return "\n".join(lines)


def write_report(report: dict, out_dir: str | Path) -> list[Path]:
    """report.md, report.json (with per-query nDCG@10) and ndcg10.png (one bar per system)."""
    return report_files(out_dir, report, markdown(report), "ndcg10.png",
                        {n: row["ndcg@10"] for n, row in report["systems"].items()}, "nDCG@10",
                        f"{report['dataset']['name']}: {report['dataset']['queries']} queries")
