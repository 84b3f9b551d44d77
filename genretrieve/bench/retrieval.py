"""Retrieval benchmark: every system over one BEIR folder, scored with nDCG@10, recall@10/100, MRR@10.

Quality comes from one batched run per system; query latency is measured apart, one query at a
time on a small fixed sample (documents already encoded), because batching hides what a user
waits for. Per-query nDCG@10 is kept in the report, and each system's difference to the
teacher gets a paired bootstrap CI over those queries, so "better" means beyond noise. When the
oracle runs, every gen-based system is also reported as a share of its oracle twin (the same
system with the oracle's vector in place of the response embedding; for gen, the oracle itself):
how much of what this backbone's answers allow the student has learnt. The settings a search
would use (hybrid weight, index kind and chunking, the oracle's generation settings) come from
the config; `search:MODE` rows are the product itself, beside the exact systems.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..config import Config, load_config
from ..errors import UsageError
from ..safety import SafetyProbe, load_probe, probe_flags
from .beir import doc_text, load_beir
from .metrics import mean, mrr_at_k, ndcg_at_k, paired_bootstrap, recall_at_k
from .report import write_report as report_files
from .systems import DOC_SPACE, FILTER, GEN_BASED, SYSTEMS, Workspace, blocked, check_systems, split_system

DEVSET = Path(__file__).resolve().parent.parent / "data" / "devset"
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
BASELINE = "teacher"  # what every system's paired CI is taken against
RESAMPLES, SEED = 2000, 0


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
                  hybrid_weight: float | None = None, latency_queries: int = 20,
                  log: Callable[[str], None] | None = None, oracle_tokens: int | None = None,
                  oracle_batch: int | None = None, config: Config | str | None = None) -> dict:
    """Score each system on the folder's queries (the shipped dev set when folder is None).

    Settings come from `config` (search.hybrid_weight, the index section, and train.max_new_tokens /
    train.gen_batch_size, so the oracle's answers are the ones a student of this backbone is trained
    on); `hybrid_weight`, `oracle_tokens` and `oracle_batch` override them.
    """
    systems = list(systems or SYSTEMS)
    check_systems(systems, SYSTEMS)
    if encoder is None and any(s != "bm25" for s in systems):
        raise UsageError("only bm25 runs without an encoder")
    config = load_config(config, search__hybrid_weight=hybrid_weight, train__max_new_tokens=oracle_tokens,
                         train__gen_batch_size=oracle_batch)
    data = load_beir(folder or DEVSET, limit=limit)
    doc_ids = list(data.corpus)
    workspace = Workspace(encoder, [doc_text(data.corpus[d]) for d in doc_ids], config)
    try:
        return _run(workspace, data, str(folder or DEVSET), limit, systems, latency_queries, log)
    finally:
        workspace.close()  # the temporary index of the search:MODE systems


def _run(workspace: Workspace, data, path: str, limit: int | None, systems: list[str], latency_queries: int,
         log) -> dict:
    encoder, doc_ids = workspace.encoder, list(data.corpus)
    qids = list(data.queries)
    texts = [data.queries[q] for q in qids]
    report = {"dataset": {"name": data.name, "path": path, **data.stats},
              "settings": {"hybrid_weight": workspace.w, "limit": limit, "latency_queries": min(latency_queries, len(qids)),
                           "top_k": workspace.k},
              "machine": {"cpus": os.cpu_count()}, "encoder": describe_encoder(encoder), "systems": {}, "per_query": {}}
    probe, flags = None, None
    with_oracle = any(split_system(s)[0] == "oracle" for s in systems)
    for system in systems:
        if log:
            log(f"{system}: encoding and ranking {len(texts)} queries")
        unfiltered = system.removesuffix(FILTER)
        space = DOC_SPACE[split_system(system)[0]]
        workspace.prepare(space)  # document encoding (or indexing) is timed apart from the queries
        start = time.perf_counter()
        ranked = [[doc_ids[i] for i in row] for row in workspace.rank(unfiltered, texts)]
        if unfiltered != system:
            probe = probe or adapter_probe(encoder)
            flags = probe_flags(probe, encoder, texts) if flags is None else flags
            ranked = blocked(ranked, flags)
        seconds = time.perf_counter() - start
        twin = None
        if with_oracle and split_system(system)[0] in GEN_BASED:  # the same system with the oracle as its student
            twin = [[doc_ids[i] for i in row] for row in workspace.rank(unfiltered, texts, student=False)]
            twin = blocked(twin, flags) if unfiltered != system else twin
        scores = {"ndcg@10": [ndcg_at_k(r, data.qrels[q], 10) for q, r in zip(qids, ranked)],
                  "recall@10": [recall_at_k(r, data.qrels[q], 10) for q, r in zip(qids, ranked)],
                  "recall@100": [recall_at_k(r, data.qrels[q], 100) for q, r in zip(qids, ranked)],
                  "mrr@10": [mrr_at_k(r, data.qrels[q], 10) for q, r in zip(qids, ranked)]}
        row = {name: mean(values) for name, values in scores.items()}
        row["queries_s"] = seconds
        if twin is not None:
            twin_scores = [ndcg_at_k(r, data.qrels[q], 10) for q, r in zip(qids, twin)]
            row["oracle_ndcg@10"] = mean(twin_scores)
            report["per_query_oracle_twin"] = {**report.get("per_query_oracle_twin", {}), system: dict(zip(qids, twin_scores))}
        # the probe's own encoding counts (search reuses a gen query vector it already has, so gen and
        # hybrid +filter figures overstate by one gen encoding)
        also = (lambda t: probe_flags(probe, encoder, t)) if unfiltered != system else None
        # the oracle's answers come from the cache: timing it would time a lookup, not a system
        timed = latency_queries and unfiltered != "oracle"
        row["query_latency_ms"] = workspace.latency_ms(unfiltered, texts[:latency_queries], also) if timed else None
        row["doc_space"] = space
        if unfiltered != system:
            row["blocked"] = float(flags.mean())
        report["systems"][system] = row
        report["per_query"][system] = dict(zip(qids, scores["ndcg@10"]))
    compare(report)
    if workspace.oracle_stats:
        report["oracle"] = {"max_new_tokens": workspace.config.train.max_new_tokens, "greedy": True,
                            "chat_template": True, **workspace.oracle_stats}
    if workspace.doc_seconds.get("index") is not None:
        report["index"] = workspace.indexed().describe()
    report["doc_encode_s"] = dict(workspace.doc_seconds)
    try:
        import torch

        report["machine"]["torch_threads"] = torch.get_num_threads()
    except ImportError:  # bm25-only runs need no torch
        pass
    return report


def compare(report: dict) -> None:
    """Add to each row: the paired bootstrap CI of its nDCG@10 minus the teacher's (when the teacher
    ran), and for gen-based systems nDCG@10 as a share of their oracle twin's (when the oracle ran)."""
    rows, per_query = report["systems"], report["per_query"]
    qids = list(per_query[next(iter(per_query))]) if per_query else []
    if BASELINE in per_query:
        base = [per_query[BASELINE][q] for q in qids]
        for name, row in rows.items():
            row["vs_teacher"] = paired_bootstrap([per_query[name][q] for q in qids], base, RESAMPLES, SEED)
        for name, twin in report.get("per_query_oracle_twin", {}).items():  # could a perfect student beat the teacher?
            rows[name]["oracle_vs_teacher"] = paired_bootstrap([twin[q] for q in qids], base, RESAMPLES, SEED)
    for row in rows.values():
        if "oracle_ndcg@10" in row:
            row["of_oracle"] = row["ndcg@10"] / row["oracle_ndcg@10"] if row["oracle_ndcg@10"] > 0 else None
    report["settings"]["bootstrap"] = {"baseline": BASELINE, "resamples": RESAMPLES, "seed": SEED, "level": 0.95,
                                       "metric": "ndcg@10"}


def delta_text(row: dict) -> str:
    """'+0.012 [-0.004, +0.027]': nDCG@10 minus the teacher's, with its 95% CI; '-' without a teacher row."""
    vs = row.get("vs_teacher")
    return "-" if vs is None else f"{vs['delta']:+.3f} [{vs['ci'][0]:+.3f}, {vs['ci'][1]:+.3f}]"


def oracle_text(row: dict) -> str:
    share = row.get("of_oracle")
    return "-" if share is None else f"{share:.0%}"


def index_note(index: dict) -> str:
    """What the search:MODE rows ran on: the product's own index of the corpus."""
    return (f"search:MODE: the corpus indexed as `genretrieve index` does ({index['files']} files, {index['chunks']} "
            f"chunks of up to {index['chunk_tokens']} tokens, {index['chunk_overlap']:.0%} overlap, {index['doc_encoder']} "
            f"documents, {index['storage']} vectors, FAISS {index['kind']} (index.kind {index['configured_kind']})) and "
            "searched by `genretrieve search --mode MODE`; a document ranks at its best chunk.")


def retrieval_table(report: dict):
    from rich.table import Table

    data = report["dataset"]
    table = Table(title=f"genretrieve bench retrieval: {data['name']} ({data['documents']} docs, "
                        f"{data['queries']} queries)")
    table.add_column("system", no_wrap=True)
    for column in (*METRICS, "nDCG@10 - teacher [95% CI]", "gen / oracle", "query ms (p50)", "doc space"):
        table.add_column(column, justify="right")
    for name, row in report["systems"].items():
        latency = "-" if row["query_latency_ms"] is None else f"{row['query_latency_ms']:.1f}"
        table.add_row(name, *(f"{row[m]:.3f}" for m in METRICS), delta_text(row), oracle_text(row), latency,
                      row["doc_space"])
    encode = ", ".join(f"{space} {s:.1f} s" for space, s in report.get("doc_encode_s", {}).items())
    table.caption = (f"hybrid weight {report['settings']['hybrid_weight']}; document encoding: {encode}; CI: paired "
                     f"bootstrap over queries ({RESAMPLES} resamples); gen / oracle: nDCG@10 as a share of the same "
                     "system with the oracle's vector in place of gen's"
                     + (f"; {index_note(report['index'])}" if "index" in report else ""))
    return table


def markdown(report: dict) -> str:
    data, settings = report["dataset"], report["settings"]
    machine = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in report["machine"].items())
    lines = [f"# Retrieval benchmark: {data['name']}", "",
             f"{data['documents']} documents, {data['queries']} queries, {data['relevant_per_query']:.2f} relevant "
             f"per query (`{data['path']}`). Encoder: {json.dumps(report['encoder'])}. "
             f"Hybrid weight {settings['hybrid_weight']}; latency: median over {settings['latency_queries']} single "
             f"queries, documents already encoded; {machine}.", "",
             "| system | " + " | ".join(METRICS) + " | nDCG@10 - teacher [95% CI] | gen / oracle | query ms (p50) "
             "| all queries s | doc space |",
             "|---" * (len(METRICS) + 6) + "|"]
    for name, row in report["systems"].items():
        latency = "-" if row["query_latency_ms"] is None else f"{row['query_latency_ms']:.1f}"
        lines.append(f"| {name} | " + " | ".join(f"{row[m]:.3f}" for m in METRICS)
                     + f" | {delta_text(row)} | {oracle_text(row)} | {latency} | {row['queries_s']:.1f} | {row['doc_space']} |")
    if "index" in report:
        lines += ["", index_note(report["index"])]
    lines += ["", "Document encoding: " + ", ".join(f"{k} {v:.1f} s" for k, v in report["doc_encode_s"].items()),
              "", f"CI: paired bootstrap of per-query nDCG@10 differences to the teacher, {RESAMPLES} resamples of the "
              f"queries, seed {SEED}, percentile 95% interval."]
    if "oracle" in report:
        o = report["oracle"]
        lines += ["", f"Oracle: the teacher's embedding of the backbone's own answer (greedy, chat template, up to "
                      f"{o['max_new_tokens']} new tokens, as in training); {o['cached']} answers from the response "
                      f"cache, {o['generated']} generated ({o['tokens']} tokens in {o['seconds']:.0f} s). gen / oracle is "
                      "a gen-based system's nDCG@10 divided by that of its oracle twin (the same system with the oracle's vector in "
                      "place of the response embedding; for gen_doc_teacher and gen_doc_gen, the oracle itself)."]
        twins = [f"{name} {row['oracle_ndcg@10']:.3f} ({delta_text({'vs_teacher': row['oracle_vs_teacher']})})"
                 for name, row in report["systems"].items() if "oracle_vs_teacher" in row]
        if twins:
            lines += ["", "Oracle twins, nDCG@10 (minus the teacher's, 95% CI): " + "; ".join(twins) + "."]
    lines.append("")
    return "\n".join(lines)


def write_report(report: dict, out_dir: str | Path) -> list[Path]:
    """report.md, report.json (with per-query nDCG@10) and ndcg10.png (one bar per system)."""
    return report_files(out_dir, report, markdown(report), "ndcg10.png",
                        {n: row["ndcg@10"] for n, row in report["systems"].items()}, "nDCG@10",
                        f"{report['dataset']['name']}: {report['dataset']['queries']} queries")
