"""`genretrieve bench ...`: each command runs one benchmark and prints a table or JSON."""
from __future__ import annotations

from typing import Optional

import typer

from ..ui import handle_errors, out, print_json

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: speed (and, later, retrieval and safety).")


@bench_app.command()
@handle_errors
def speed(config: Optional[str] = typer.Option(None, "--config", "-c", help="YAML config: a path or a name under configs/."),
          queries: int = typer.Option(50, help="Single queries to time for latency."),
          docs: int = typer.Option(64, help="200-token chunks to time for throughput."),
          json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout.")):
    """Load time, query latency and document throughput: gen vs teacher vs bare backbone, fp32 vs bf16.

    Example: genretrieve bench speed --queries 50 --docs 64
    """
    from .speed import run_speed, speed_table

    report = run_speed(config, n_queries=queries, n_docs=docs)
    if json:
        print_json(report)
    else:
        out.print(speed_table(report))


@bench_app.command()
@handle_errors
def retrieval(folder: Optional[str] = typer.Argument(None, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv) [default: the shipped dev set]."),
              systems: Optional[str] = typer.Option(None, "--systems", help="Comma-separated systems [default: all]."),
              limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N queries."),
              hybrid_weight: float = typer.Option(0.5, "--hybrid-weight", help="Weight of gen in hybrid (teacher gets 1 - w)."),
              out_dir: Optional[str] = typer.Option(None, "--out", help="Write report.md, report.json and a PNG here."),
              config: Optional[str] = typer.Option(None, "--config", "-c", help="YAML config: a path or a name under configs/."),
              json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout.")):
    """Retrieval quality on a BEIR dataset: nDCG@10, Recall@10/100, MRR@10 and query latency per system.

    Systems: bm25, teacher, gen_doc_teacher, gen_doc_gen, hybrid, rrf_bm25_teacher, hyde, backbone_mean.

    Examples:
      genretrieve bench retrieval                                  # the shipped Debian FAQ dev set
      genretrieve bench retrieval ~/beir/scifact --limit 100 --systems bm25,teacher,hybrid --out report/
    """
    from ..config import load_config
    from ..models.load import load_encoder
    from ..ui import err
    from .retrieval import retrieval_table, run_retrieval, write_report

    chosen = systems.split(",") if systems else None
    encoder = None if chosen == ["bm25"] else load_encoder(load_config(config))
    report = run_retrieval(folder, encoder, chosen, limit, hybrid_weight, log=lambda msg: err.print(msg) if err.is_terminal else None)
    if out_dir:
        write_report(report, out_dir)
    if json:
        print_json(report)
    else:
        out.print(retrieval_table(report))
