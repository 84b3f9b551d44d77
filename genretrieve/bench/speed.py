"""Speed benchmark: load, query latency and document throughput, against baselines in the same process.

Every figure is a median over repeats on this machine, and each is paired with a baseline run
in the same process (teacher, bare backbone forward, fp32) so ratios survive a noisy machine.
The report names the CPU, the flags that decide bf16/int8 speed, the dtype `auto` picks and the
load average, since on a shared machine the absolute figures mean little without them.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..config import load_config
from ..models.assets import converted_gguf_dir, package_file
from ..models.device import pick_device, pick_dtype
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
    prefix, rows = encoder.token_ids(texts, encoder.document_instruction)
    ids = [prefix + row for row in rows]
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


SECTIONS = ("encode", "index", "search", "faiss", "generate", "scale")
DEFAULT_SECTIONS = SECTIONS[:5]  # scale is opt-in: its first run encodes 100k texts


def parse_sections(sections) -> list[str]:
    from ..errors import UsageError

    chosen = [s.strip() for s in (sections.split(",") if isinstance(sections, str) else sections or DEFAULT_SECTIONS)]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or not chosen:
        raise UsageError(f"--sections takes a comma-separated subset of {','.join(SECTIONS)}, not {sections!r}")
    return [s for s in SECTIONS if s in chosen]


def run_speed(config=None, n_queries: int = 50, n_docs: int = 64, cold: bool = True, sections=None,
              n_chunks: int = 1000, faiss_n: int = 20_000, faiss_queries: int = 1000, scale_n: int = 100_000,
              precisions="float32,bfloat16,int8", log=None) -> dict:
    quiet_transformers()
    sections = parse_sections(sections)
    base = load_config(config)
    report = {"machine": machine(), "sections": sections}
    if "encode" in sections:
        report.update(encode_section(base, n_queries, n_docs, cold, parse_precisions(precisions)))
    rest = [s for s in sections if s != "encode"]
    if rest:
        encoder = load_encoder(base)
        report.update(run_sections(encoder, base, rest, n_chunks=n_chunks, n_queries=n_queries, faiss_n=faiss_n,
                                   faiss_queries=faiss_queries, config_arg=config, scale_n=scale_n, log=log))
    return report


def machine() -> dict:
    from ..models.device import cpu_info

    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
            "cpu": cpu_info(), "auto_dtype": str(pick_dtype("auto", pick_device("auto"))).removeprefix("torch."),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_average_1min": os.getloadavg()[0]}


def run_sections(encoder, cfg, sections, *, n_chunks: int = 1000, n_queries: int = 50, faiss_n: int = 20_000,
                 faiss_queries: int = 1000, config_arg=None, cold_runs: int = 3, cold_args: tuple = (),
                 scale_n: int = 100_000, log=None) -> dict:
    """The index, search, faiss and scale sections on one encoder, in temp folders removed afterwards."""
    from ..index.build import build_index
    from .speed_index import faiss_section, index_section, search_section, write_corpus

    log = log or (lambda msg: None)
    report = {}
    if {"index", "search", "faiss"} & set(sections):  # they share one folder of chunks
        with tempfile.TemporaryDirectory(prefix="genretrieve-speed-") as tmp:
            work = Path(tmp)
            index_dir = work / f"index-{cfg.index.doc_encoder}"
            if "index" in sections:
                report["index"], texts = index_section(encoder, cfg, work, n_chunks, log)
            else:
                texts, _ = write_corpus(work / "docs", n_chunks, encoder.backbone.tokenizer, cfg)
                if "search" in sections:
                    build_index(work / "docs", index_dir, encoder, cfg)
            if "search" in sections:
                report["search"] = search_section(encoder, cfg, index_dir, n_queries, config_arg, cold_runs, cold_args, log)
            if "faiss" in sections:
                report["faiss"] = faiss_section(encoder, cfg, texts, faiss_n, faiss_queries, log)
    if "generate" in sections:
        from .speed_generate import generate_section

        report["generate"] = generate_section(encoder, log=log)
    if "scale" in sections:
        from .speed_scale import scale_section

        report["scale"] = scale_section(encoder, cfg, n=scale_n, config_arg=config_arg, log=log)
    return report


def parse_precisions(precisions) -> list[str]:
    from ..errors import UsageError

    chosen = [p.strip() for p in (precisions.split(",") if isinstance(precisions, str) else precisions)]
    if not chosen or any(p not in VARIANTS for p in chosen):
        raise UsageError(f"--precisions takes a comma-separated subset of {','.join(VARIANTS)}, not {precisions!r}")
    return [p for p in VARIANTS if p in chosen]


def encode_section(base, n_queries: int, n_docs: int, cold: bool, precisions=None) -> dict:
    report = {"systems": {}}
    if cold and base.model.backbone == "packaged:smollm2":
        report["first_load_s"] = first_load_seconds()
    load_encoder(base)  # warm imports and the cache, so the next figure is the cached load alone
    report["cached_load_s"] = timed(lambda: load_encoder(base), repeats=3)
    qs, docs = queries(n_queries), passages(n_docs)
    chosen = precisions or list(VARIANTS)
    variants = {p: VARIANTS[p] for p in chosen} if not torch.cuda.is_available() else {"bfloat16": VARIANTS["bfloat16"]}
    reference = {}  # fp32 embeddings: what the other precisions are compared with (cosine)
    auto = str(pick_dtype("auto", pick_device("auto"))).removeprefix("torch.")
    for dtype, overrides in variants.items():
        encoder = load_encoder(load_config(base, **overrides))
        encoder.encode_queries(qs[:2])  # warm-up
        prefix, rows = encoder.token_ids(docs, encoder.document_instruction)
        doc_tokens = len(prefix) + np.mean([len(r) for r in rows])
        systems = {
            "gen": (encoder.encode_queries, encoder.encode_documents),
            # the same encoder recomputing the shared prefix (system prompt, turn header) every call
            "gen, prefix recomputed": (lambda t: prefix_recomputed(encoder, encoder.encode_queries, t),
                                       lambda t: prefix_recomputed(encoder, encoder.encode_documents, t)),
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
        embeddings = {"gen queries": encoder.encode_queries(qs), "gen docs": encoder.encode_documents(docs),
                      "teacher queries": encoder.teacher.encode(qs), "teacher docs": encoder.teacher.encode(docs)}
        if dtype == auto:  # the batch size the default dtype should use
            report["teacher_batch_docs_per_s"] = teacher_batch_sweep(encoder.teacher)
        if not reference:
            reference = embeddings
        elif dtype != "float32" and "float32" in variants:
            report.setdefault("cosine_to_fp32", {})[dtype] = {
                name: float((vectors * reference[name]).sum(1).min()) for name, vectors in embeddings.items()}
    return report


def prefix_recomputed(encoder, encode, texts):
    """Encode with the prefix key/value cache off: what caching the chat framing's prefix saves."""
    encoder.prefix_cache = False
    try:
        return encode(texts)
    finally:
        encoder.prefix_cache = True


def teacher_batch_sweep(teacher, n: int = 128, sizes=(8, 16, 32, 64)) -> dict:
    """Teacher documents/s per batch size on n ~200-token passages (length-sorted batches, best of 2)."""
    docs = passages(n)
    return {str(size): n / min(timed(lambda: teacher.encode(docs, batch_size=size), repeats=1) for _ in range(2))
            for size in sizes}


# fp32 first: it is the reference the others' embeddings are compared with
VARIANTS = {"float32": {"model__dtype": "float32"}, "bfloat16": {"model__dtype": "bfloat16"},
            "int8": {"model__dtype": "float32", "model__quantize": "int8"}}


def speed_table(report: dict):
    from rich.table import Table

    m = report["machine"]
    cpu = m.get("cpu", {})
    table = Table(title=f"genretrieve bench speed: {cpu.get('model') or 'CPU'} ({' '.join(cpu.get('flags', [])) or 'no flags read'}), "
                        f"{m['cpus']} CPUs, {m['torch_threads']} torch threads, auto dtype {m.get('auto_dtype')}, "
                        f"load average {m.get('load_average_1min', float('nan')):.1f}; docs ~{report['doc_tokens_mean']:.0f} tokens")
    for column in ("system", "query p50 ms", "query p90 ms", "docs/s"):
        table.add_column(column, justify="right" if column != "system" else "left")
    for name, row in report["systems"].items():
        table.add_row(name, f"{row['query_p50_ms']:.1f}", f"{row['query_p90_ms']:.1f}", f"{row['docs_per_s']:.1f}")
    notes = [f"cached load {report['cached_load_s']:.2f} s"]
    if "first_load_s" in report:
        notes.insert(0, f"first load (GGUF conversion) {report['first_load_s']:.1f} s")
    notes += [f"{k.replace('_', ' ')} = {v:.2f}" for k, v in report.items() if k.startswith("gen_vs_backbone")]
    notes += [f"min cosine to fp32, {dtype}: " + ", ".join(f"{name} {c:.4f}" for name, c in cos.items())
              for dtype, cos in report.get("cosine_to_fp32", {}).items()]
    if "teacher_batch_docs_per_s" in report:
        notes.append("teacher docs/s by batch size (auto dtype): " + ", ".join(
            f"{size}: {rate:.1f}" for size, rate in report["teacher_batch_docs_per_s"].items()))
    table.caption = "; ".join(notes)
    return table


def _table(title: str, columns: list[str], rows: list[list], caption: str):
    from rich.table import Table

    table = Table(title=title, caption=caption)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[str(cell) for cell in row])
    return table


def _verdict(ok: bool) -> str:
    return "[green]pass[/green]" if ok else "[red]miss[/red]"


def speed_tables(report: dict) -> list:
    """One table per section that ran."""
    tables = [speed_table(report)] if "systems" in report else []
    if "index" in report:
        r, c = report["index"], report["index"]["corpus"]
        rows = [[name, e["chunks_encoded"], f"{e['seconds']:.1f}", f"{e['chunks_per_s']:.1f}",
                 f"≥{e['target_chunks_per_s']:.0f} {_verdict(e['pass'])}",
                 f"{e['reindex_s']:.2f}", f"≤{e['reindex_target_s']:.0f} {_verdict(e['reindex_pass'])}"]
                for name, e in r["encoders"].items()]
        tables.append(_table("index: folder -> index, per document encoder",
                             ["doc encoder", "chunks", "s", "chunks/s", "target", "re-index s", "target"], rows,
                             f"{c['chunks']} chunks (mean {c['chunk_tokens_mean']:.0f}, max {c['chunk_tokens_max']} "
                             f"tokens) in {c['files']} files; dtype {r['dtype']}; one build each, re-index "
                             f"median of 3; gen/teacher throughput = {r['gen_vs_teacher_throughput']:.2f}"))
    if "search" in report:
        r, cold = report["search"], report["search"]["cold"]
        rows = [[mode, f"{m['p50_ms']:.1f}", f"{m['p90_ms']:.1f}", f"{m['vs_keyword_p50']:.1f}x",
                 f"≤{r['target_ms']:.0f} ms {_verdict(m['pass'])}"] for mode, m in r["modes"].items()]
        rows.append(["cold CLI, s", f"{cold['median_s']:.2f}", f"{max(cold['times_s']):.2f} max", "",
                     f"≤{cold['target_s']:.0f} s {_verdict(cold['pass'])}"])
        tables.append(_table(f"search: {r['queries']} single queries, k={r['k']}, safety {r['safety']}, "
                             f"{r['index_doc_encoder']}-encoded index",
                             ["mode", "p50 ms", "p90 ms", "vs keyword", "target (p50)"], rows,
                             f"cold CLI: `{cold['command']}`, median of {cold['runs']}, "
                             f"peak RSS {cold['peak_rss_mib']:.0f} MiB; "
                             f"this process: peak RSS {r['process_peak_rss_mib']:.0f} MiB"))
    if "faiss" in report:
        r, c = report["faiss"], report["faiss"]["corpus"]
        rows = [[kind, "skipped: " + k["skipped"]] + [""] * 6 if "skipped" in k else
                [kind, f"{k['build_s']:.2f}", f"{k['batch_qps']:.0f}", f"{k['batch_vs_flat_cpu']:.2f}x",
                 f"{k['single_qps']:.0f}", f"{k['recall_at_10']:.3f}",
                 f"{k['faiss_bytes'] / 2**20:.1f}" if "faiss_bytes" in k else ""]
                for kind, k in r["kinds"].items()]
        params = "; ".join(f"{kind.split()[0]} " + " ".join(f"{p}={k[p]}" for p in ("nlist", "nprobe", "M", "ef_search")
                                                          if p in k) for kind, k in r["kinds"].items()
                           if kind.endswith("(cpu)") and any(p in k for p in ("nlist", "M")))
        sources = ", ".join(f"{name} {words / 1000:.0f}k words" for name, words in c["words_by_source"].items())
        tables.append(_table(f"faiss: {c['vectors']} real teacher vectors (dim {c['dim']}), {r['queries']} queries",
                             ["index", "build s", "batch q/s", "vs flat", "1-query q/s", f"recall@{r['k']}", "MiB"],
                             rows, f"batch = all {r['queries']} queries in one call; recall against exact flat; "
                             f"{params}; MiB = saved FAISS file. Corpus: {c['from_index_section']} index-section "
                             f"chunks + {c['words_per_passage']}-word windows every {c['stride_words']} words "
                             f"({sources}); teacher {c['teacher_passages_per_s']:.0f} passages/s. GPU: {r['gpu']}"))
    if "generate" in report:
        from .speed_generate import generate_table

        tables.append(generate_table(report["generate"], _table))
    if "scale" in report:
        from .speed_scale import scale_tables

        tables += scale_tables(report["scale"], _table)
    return tables


def write_report(report: dict, out_dir) -> list:
    """report.md (the tables as printed), report.json, latency.png (single-query p50 per system)."""
    from rich.console import Console

    from .report import write_report as report_files

    console = Console(record=True, width=120, file=open(os.devnull, "w"))
    for table in speed_tables(report):
        console.print(table)
    markdown = "# genretrieve bench speed\n\n```\n" + console.export_text() + "```\n"
    bars = ({name: row["query_p50_ms"] for name, row in report.get("systems", {}).items()}
            or {kind: row["p50_ms"] for kind, row in report.get("scale", {}).get("kinds", {}).items()})
    return report_files(out_dir, report, markdown, "latency.png", bars, "single-query p50 (ms)",
                        "query latency per system", ylim=None)
