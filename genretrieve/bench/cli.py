"""`genretrieve bench ...`: each command runs one benchmark and prints a table or JSON."""
from __future__ import annotations

from typing import Optional

import typer

from ..ui import ConfigOpt, JsonOpt, handle_errors, out, print_json

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: speed, retrieval quality, safety (harmful-content retrieval), and the server under load.")
HybridWeightOpt = typer.Option(None, "--hybrid-weight", help="Weight of gen in hybrid (teacher gets 1 - w) [default: the config's search.hybrid_weight, 0.1].")
ReportOpt = typer.Option(None, "--out", help="Write report.md, report.json and a PNG here.")


def emit(report: dict, out_dir, json: bool, write_report, tables) -> None:
    """Every bench's output: report files under --out, then the JSON report or the tables (`tables()`)."""
    if out_dir:
        write_report(report, out_dir)
    if json:
        print_json(report)
    else:
        for table in tables():
            out.print(table)


@bench_app.command()
@handle_errors
def speed(config: Optional[str] = ConfigOpt,
          queries: int = typer.Option(50, help="Single queries to time for latency (encode and search sections)."),
          docs: int = typer.Option(64, help="200-token chunks to time for throughput (encode section)."),
          sections: str = typer.Option("encode,index,search,faiss,generate", "--sections", help="Comma-separated subset of encode,index,search,faiss,generate,scale (scale is opt-in)."),
          chunks: int = typer.Option(1000, "--chunks", min=1, help="~200-token chunks in the folder the index section indexes."),
          faiss_n: int = typer.Option(20_000, "--faiss-n", min=100, help="Real teacher vectors for the faiss section (the teacher encodes ~100/s on a CPU)."),
          scale_n: int = typer.Option(100_000, "--scale-n", min=1000, help="Real texts (WordNet glosses, FOLDOC) for the opt-in scale section; embeddings cached."),
          precisions: str = typer.Option("float32,bfloat16,int8", "--precisions", help="encode section: which of float32,bfloat16,int8 to time (CPU; a GPU times bfloat16)."),
          first_load: bool = typer.Option(True, "--first-load/--no-first-load", help="encode section: also time the one-off GGUF conversion."),
          out_dir: Optional[str] = typer.Option(None, "--out", help="Write report.md, report.json and a latency PNG here."),
          json: bool = JsonOpt):
    """Speed: encoders, indexing a folder, search latency (warm and cold CLI), FAISS index kinds.

    Sections (--sections, default all):
      encode: load, query latency, docs/s: gen vs teacher vs bare backbone; fp32 vs bf16 vs int8
              (with the cosine of each to fp32's embeddings)
      index:  chunks/s per document encoder, re-index of the unchanged folder
      search: p50/p90 per mode, cold `genretrieve search`, peak memory
      faiss:  flat/ivf/hnsw on real embeddings: build, queries/s, recall@10 (GPU if FAISS has it)
      generate: tokens/s of batched greedy answers per batch size (training data costs this)
      scale:  (opt-in) on-disk ivf-sq8/ivf-pq vs in-RAM kinds on 100k real embeddings: recall@10,
              merge_ondisk time, size, memory; 1 vs 2 concurrent --shard processes

    Examples:
      genretrieve bench speed --queries 50 --docs 64
      genretrieve bench speed --sections index,search,faiss --chunks 200 --faiss-n 2000 --json
      OMP_WAIT_POLICY=ACTIVE genretrieve bench speed --sections encode --precisions bfloat16 --no-first-load
      genretrieve bench speed --sections scale --out reports/scale
    """
    from ..ui import err
    from .speed import run_speed, speed_tables, write_report

    report = run_speed(config, n_queries=queries, n_docs=docs, cold=first_load, sections=sections, n_chunks=chunks,
                       faiss_n=faiss_n, scale_n=scale_n, precisions=precisions,
                       log=lambda msg: err.print(msg, highlight=False) if err.is_terminal else None)
    emit(report, out_dir, json, write_report, lambda: speed_tables(report))


@bench_app.command()
@handle_errors
def retrieval(folder: Optional[str] = typer.Argument(None, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv) [default: the shipped dev set]."),
              systems: Optional[str] = typer.Option(None, "--systems", help="Comma-separated systems [default: all]."),
              limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N queries."),
              hybrid_weight: Optional[float] = HybridWeightOpt, out_dir: Optional[str] = ReportOpt,
              config: Optional[str] = ConfigOpt, json: bool = JsonOpt):
    """Retrieval quality on a BEIR dataset: nDCG@10, Recall@10/100, MRR@10 and query latency per system.

    Systems: bm25, teacher, gen_doc_teacher, gen_doc_gen, hybrid (hybrid@W: at weight W), rrf_bm25_teacher,
    rrf_bm25_gen, hyde, backbone_mean, oracle; X+filter is X behind the adapter's safety probe (`search --safety block`).
    Their query vectors come from the code `genretrieve search` runs; they score whole documents exactly.
    search:teacher, search:gen, search:hybrid[@W] are the product itself: the corpus indexed as `genretrieve
    index` does (chunked, float16, FAISS of the config's index kind) and searched by `genretrieve search`'s code.
    oracle is the ceiling: the teacher's embedding of the backbone's own answer (generated once as training
    does, train.max_new_tokens, and cached); with it, gen-based systems are also shown as a share of it.
    With teacher among the systems, each row gets nDCG@10 minus the teacher's with a paired bootstrap 95% CI.

    Examples:
      genretrieve bench retrieval                                  # the shipped Debian FAQ dev set
      genretrieve bench retrieval ~/beir/scifact --limit 100 --systems bm25,teacher,hybrid --out report/
      genretrieve bench retrieval --systems teacher,gen_doc_teacher,oracle         # gen as a share of its ceiling
      genretrieve bench retrieval --systems teacher,hybrid@0.1,hybrid@0.3,hybrid@0.5    # a weight sweep
      genretrieve bench retrieval --systems teacher,search:teacher    # exact vs the product's own index
      genretrieve bench retrieval --config qwen2.5-coder-1.5b --systems teacher,hybrid@0.2+filter
    """
    from ..config import load_config
    from ..models.load import load_encoder
    from ..ui import err
    from .retrieval import retrieval_table, run_retrieval, write_report
    from .systems import SYSTEMS, check_systems

    chosen = systems.split(",") if systems else None
    check_systems(chosen or SYSTEMS, SYSTEMS)  # before minutes of model loading
    cfg = load_config(config, search__hybrid_weight=hybrid_weight)
    encoder = None if chosen == ["bm25"] else load_encoder(cfg)
    report = run_retrieval(folder, encoder, chosen, limit, config=cfg,
                           log=lambda msg: err.print(msg) if err.is_terminal else None)
    emit(report, out_dir, json, write_report, lambda: [retrieval_table(report)])


@bench_app.command()
@handle_errors
def safety(queries: Optional[str] = typer.Option(None, "--queries", help="Harmful queries (.txt, .jsonl or .csv) [default: AdvBench, 520 prompts]."),
           limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N queries (passages are generated for those only)."),
           systems: Optional[str] = typer.Option(None, "--systems", help="Comma-separated systems [default: all but search:MODE, plus gen+filter; teacher always runs]."),
           hybrid_weight: Optional[float] = HybridWeightOpt, out_dir: Optional[str] = ReportOpt,
           filter_only: bool = typer.Option(False, "--filter-only", help="Only the filter: block rate per set and added "
                                            "latency, no corpus written, no systems ranked."),
           config: Optional[str] = ConfigOpt, json: bool = JsonOpt):
    """Safety (AdvBench-IR protocol): how often a harmful query retrieves the harmful passage written for it.

    Top-k accuracy (the query's own passage in the top k) and any-harm@k, k = 1, 5, 20, 100; lower is safer.
    Systems: teacher, backbone_mean, hyde, gen, gen_doc_gen, hybrid (hybrid@W for weight W), their query vectors
    computed by the code `genretrieve search` runs; search:teacher, search:gen, search:hybrid: the product's own
    index and search over the same passages (on request only); X+filter is X behind the adapter's safety probe
    (default: gen+filter). The packaged SmolLM2 writes one passage per query once (cached), whichever
    backbone is measured; a full run generates 520 passages on first use.
    The filter is also measured per set: the share blocked of the harmful queries and of each benign set
    (dev-set questions, the held-out natural and borderline questions), and the latency it adds.

    Examples:
      genretrieve bench safety --limit 50
      genretrieve bench safety --filter-only
      genretrieve bench safety --queries harmful.csv --systems teacher,gen,gen+filter --out safety-report/
      genretrieve bench safety --config qwen2.5-coder-1.5b --systems gen,hybrid@0.3,hybrid@0.5
    """
    from ..config import load_config
    from ..models.load import load_encoder
    from ..ui import err
    from .safety import filter_table, run_safety, safety_table, write_report

    cfg = load_config(config, search__hybrid_weight=hybrid_weight)
    encoder = load_encoder(cfg)
    report = run_safety(encoder, queries, systems.split(",") if systems else None, limit, config=cfg,
                        log=lambda msg: err.print(msg) if err.is_terminal else None, filter_only=filter_only)
    emit(report, out_dir, json, write_report,
         lambda: ([safety_table(report)] if report["systems"] else []) + [filter_table(report)])


@bench_app.command("serve")
@handle_errors
def serve_load(clients: int = typer.Option(8, "--clients", help="Concurrent clients (compared with 1)."),
               requests: int = typer.Option(200, "--requests", help="Requests per row (distinct queries)."),
               modes: str = typer.Option("teacher,gen", "--modes", help="Comma-separated search modes to load."),
               chunks: int = typer.Option(300, "--chunks", min=1, help="~200-token chunks in the served temp index."),
               out_dir: Optional[str] = ReportOpt, config: Optional[str] = ConfigOpt, json: bool = JsonOpt):
    """Load test of `genretrieve serve` on loopback: 1 client vs N concurrent clients, per mode.

    p50/p99 latency, requests/s and errors of /search, the speed-up from micro-batching, start to first
    answer against the cold CLI search, and the server's memory.

    Examples:
      genretrieve bench serve
      genretrieve bench serve --clients 8 --requests 400 --modes teacher,gen,hybrid --out reports/serve
    """
    from ..ui import err
    from .serve import run_serve_bench, serve_table, write_report

    report = run_serve_bench(config, n_chunks=chunks, clients=clients, requests=requests,
                             modes=[m.strip() for m in modes.split(",") if m.strip()],
                             log=lambda msg: err.print(msg, highlight=False) if err.is_terminal else None)
    emit(report, out_dir, json, write_report, lambda: [serve_table(report)])
