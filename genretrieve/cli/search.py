"""The search command: one query, or many from a file, in four modes, with the safety filter."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..ui import err, handle_errors, out, print_json
from . import ConfigOpt, IndexOpt, JsonOpt, _encoder, _index_dir, app


def _check_index(index_dir: Path, path_glob: Optional[str], dense: bool) -> None:
    """Open the index read-only (no index, a damaged one, missing FAISS files for a `dense` search: an error),
    say when --path matches nothing, and when chunks were committed after the FAISS files (a cut-off run)."""
    from ..index.folder import IndexFolder

    folder = IndexFolder(index_dir, readonly=True)
    try:
        if dense:
            folder.check_vectors()
            if folder.vectors_behind():
                err.print(f"[yellow]warning:[/yellow] the index at {escape(str(index_dir))} changed after its FAISS files "
                          "were written (an index run was cut off), so vector search misses the chunks it added; run "
                          "the index command again to finish it", highlight=False)
        if path_glob and not folder.store.ids_matching_path(path_glob):
            err.print(f"[yellow]warning:[/yellow] --path {escape(path_glob)} matches no indexed file, so there are "
                      "no hits; paths are relative to the indexed folder (see genretrieve indexes)", highlight=False)
    finally:
        folder.close()


@app.command()
@handle_errors
def search(query: Optional[str] = typer.Argument(None, help="The question or search text."),
           index: Optional[Path] = IndexOpt,
           k: Optional[int] = typer.Option(None, "-k", help="Hits per query [default: 10]."),
           mode: Optional[str] = typer.Option(None, "--mode", "-m", help="teacher | gen | hybrid | keyword [default: teacher]."),
           hybrid_weight: Optional[float] = typer.Option(None, "--hybrid-weight", help="w in hybrid = (1 - w)·teacher + w·gen [default: 0.1]."),
           path_glob: Optional[str] = typer.Option(None, "--path", help="Only chunks whose path matches this glob."),
           queries: Optional[Path] = typer.Option(None, "--queries", help="Search every query in a .txt, .jsonl or .csv file."),
           explain_query: bool = typer.Option(False, "--explain", help="Also print the response the query embedding stands for."),
           safety: Optional[str] = typer.Option(None, "--safety", help="off | warn | block: the harmful-query filter [default: warn; off keeps the LLM out of teacher and keyword mode]."),
           config: Optional[str] = ConfigOpt, json: bool = JsonOpt):
    """Search an index. Hits go to stdout as a table, or one JSON object per hit with --json.

    Examples:
      genretrieve search "how do I reset my password?"
      genretrieve search "install steps" --mode hybrid --path "docs/**/*.md" -k 5 --json
      genretrieve search --queries questions.jsonl --json > hits.jsonl
      genretrieve search "how do I make a weapon" --safety block
    """
    from ..config import load_config
    from ..errors import UsageError
    from ..index.folder import IndexFolder
    from ..query_file import read_query_file
    from ..search import Searcher

    if (query is None) == (queries is None):
        raise UsageError("give a QUERY or --queries FILE (one of them)")
    if query is not None and not query.strip():
        raise UsageError("empty query")
    cfg = load_config(config, search__k=k, search__mode=mode, search__safety=safety, search__hybrid_weight=hybrid_weight)
    # bulk: each query's id is the file's `_id`, else its number in the file
    pairs = [(q.get("id", str(n)), q["text"]) for n, q in enumerate(read_query_file(queries), 1)] if queries \
        else [(None, query)]
    # before the models: a missing or damaged index is reported at once
    _check_index(_index_dir(index), path_glob, dense=cfg.search.mode != "keyword")
    needs_models = cfg.search.mode != "keyword" or cfg.search.safety != "off" or explain_query
    # the LLM only for gen vectors (gen/hybrid, the probe, --explain) or to vouch for a gen-encoded index
    needs_llm = (cfg.search.mode in ("gen", "hybrid") or cfg.search.safety != "off" or explain_query
                 or IndexFolder(_index_dir(index)).space == "gen")
    encoder = _encoder(cfg, llm=needs_llm) if needs_models else None
    if encoder is not None and not encoder.card["trained"] and cfg.search.mode in ("gen", "hybrid"):
        err.print("[yellow]warning:[/yellow] the adapter is untrained, so gen embeddings carry no meaning yet; "
                  "use --mode teacher or keyword, or train one (genretrieve train)")
    searcher = Searcher(_index_dir(index), encoder, cfg)
    if cfg.search.safety != "off" and encoder is not None and searcher.probe is None:
        err.print("[yellow]warning:[/yellow] this adapter has no safety probe, so harmful queries are not flagged")
    results = searcher.search([text for _, text in pairs], cfg.search.k, cfg.search.mode, path_glob, cfg.search.safety,
                              cfg.search.hybrid_weight)
    explanations = {}
    if explain_query:
        from ..models.decode import explain as explain_queries
        explanations = {e.query: e.text for e in explain_queries(encoder, [text for _, text in pairs])}
    calibration = None
    if searcher.probe is not None and cfg.search.safety != "off":
        from ..safety import describe
        calibration = describe(searcher.probe)
    for (query_id, text), result in zip(pairs, results):
        # notes, not data: stderr, with or without --json (JSON carries "flagged"/"blocked")
        if result.blocked:
            err.print(f"[red]blocked:[/red] {escape(repr(text))} was judged harmful; no results shown (--safety block)")
        elif result.flagged:
            err.print(f"[red]flagged:[/red] {escape(repr(text))} looks like a harmful request (--safety warn)")
        if json:
            extra = {"query_id": query_id, "query": text} if queries else {}
            if result.flagged:  # which threshold judged it, so a user can tell their calibration is in force
                extra["safety_calibration"] = calibration
            if result.blocked:
                print_json({**extra, **result.to_dict()})
            for hit in result.hits:
                print_json({**extra, **hit.to_dict()})
            if explain_query:
                print_json({**extra, "explain": explanations[text]})
            continue
        if explain_query:
            out.print(f"[dim]response the query stands for:[/dim] {escape(explanations[text])}", highlight=False)
        if result.blocked:
            continue
        from ..render import hits_table
        out.print(hits_table(text, result.hits))
