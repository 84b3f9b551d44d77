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
