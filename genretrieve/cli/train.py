"""The train command: adapters from the frozen LLM's own answers."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..ui import err, handle_errors, out, print_json
from . import ConfigOpt, JsonOpt, _encoder, app


@app.command()
@handle_errors
def train(out_dir: Path = typer.Option(Path("adapters/default"), "--out", "-o", help="Adapter folder to write."),
          queries: Optional[Path] = typer.Option(None, "--queries", help="Train on your own queries (.txt, .jsonl or .csv)."),
          from_index: Optional[Path] = typer.Option(None, "--from-index", help="Adapt to an index: the LLM writes queries for its chunks."),
          fit: Optional[str] = typer.Option(None, "--fit", help="closed-form | gradient | closed-form+gradient."),
          max_queries: Optional[int] = typer.Option(None, "--max-queries", help="Queries to use [default: 4096, the queries whose answers ship]."),
          max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop gradient training after this many steps."),
          time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Stop gradient training after MINUTES, with a usable adapter."),
          resume: bool = typer.Option(False, "--resume", help="Continue gradient training from the last checkpoint."),
          config: Optional[str] = ConfigOpt, json: bool = JsonOpt):
    """Train the adapter from the frozen LLM's own answers (responses are cached and reused).

    Examples:
      genretrieve train --out genretrieve/data/adapters/smollm2-minilm     # the shipped default
      genretrieve train --queries my_questions.txt --out adapters/mine
      genretrieve train --from-index indexes/default --max-queries 500 --out adapters/docs
      genretrieve train --fit gradient --time-budget 30 --out adapters/grad   (later: --resume)
    Use an adapter with a config: model.adapter: adapters/mine
    """
    from ..config import load_config
    from ..errors import GenretrieveError, UsageError
    from ..query_file import read_query_file
    from ..train.run import train_adapter
    from ..ui import progress

    if queries and from_index:
        raise UsageError("give --queries or --from-index, not both")
    cfg = load_config(config, train__fit=fit, train__max_queries=max_queries, model__adapter="fresh")
    user_queries = read_query_file(queries) if queries else None
    encoder = _encoder(cfg)
    if from_index:
        from ..train.doc2query import queries_from_index
        user_queries, asked = queries_from_index(encoder, from_index, cfg.train.max_queries, cfg.train.seed)
        err.print(f"doc2query: {asked['questions']} of {asked['chunks']} chunks gave a question")
        if len(user_queries) < 2:
            raise GenretrieveError(f"the LLM wrote a usable question for {asked['questions']} of {asked['chunks']} "
                                   "chunks: too few to train on; use --queries FILE or a larger backbone (--config)")
    with progress() as bar:
        task = bar.add_task("training", total=None)

        def report(stage, done, total, note=""):
            bar.update(task, description=f"{stage} {note}", completed=done, total=total)

        record = train_adapter(encoder, cfg, out_dir, user_queries, resume=resume, max_steps=max_steps,
                               time_budget_min=time_budget, report=report)
    summary = {"adapter": str(out_dir), "heldout": record["heldout"], "heldout_untrained": record["heldout_untrained"],
               "seconds": record["seconds"], "responses": record["generation"]}
    if json:
        return print_json(summary)
    held, base = record["heldout"], record["heldout_untrained"]
    out.print(f"adapter written to [bold]{out_dir}[/bold] in {record['seconds']:.0f} s")
    out.print(f"held-out ({held['n']} queries): cosine {held['cosine']:.3f} (untrained {base['cosine']:.3f}), "
              f"top-1 {held['top1']:.3f} (untrained {base['top1']:.3f}), centred cosine {held['centred_cosine']:.3f}")
