"""The `genretrieve` command: a thin Typer layer; each command parses flags and calls the library."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .ui import err, handle_errors, out, print_json

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
                  help="Semantic search with generative embeddings: a query embeds as the answer a frozen LLM would give.")

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config: a path or a name under configs/.")
JsonOpt = typer.Option(False, "--json", help="Machine-readable output on stdout.")


def _encoder(config):
    """Load the models for a config (a name/path or a Config), with a spinner on a terminal."""
    from contextlib import nullcontext

    from .config import load_config
    from .models.load import load_encoder

    with err.status("loading models", spinner="dots") if err.is_terminal else nullcontext():
        return load_encoder(load_config(config))


@app.command()
@handle_errors
def info(config: Optional[str] = ConfigOpt, json: bool = JsonOpt):
    """Versions, device, dtype, backbone, teacher, adapter and cache location.

    Example: genretrieve info --json
    """
    from .models.load import describe

    details = describe(_encoder(config))
    if json:
        return print_json(details)
    adapter = details["adapter"]
    state = "[green]trained[/green]" if adapter["trained"] else "[yellow]fresh, UNTRAINED (gen embeddings are not meaningful yet)[/yellow]"
    out.print(f"genretrieve {details['versions']['genretrieve']}  torch {details['versions']['torch']}  "
              f"transformers {details['versions']['transformers']}  faiss {details['versions']['faiss']}")
    out.print(f"device   {details['device']} ({details['dtype']}, {details['threads']} threads)")
    out.print(f"backbone {details['backbone']['id']}  d={details['backbone']['hidden_size']}  [{details['backbone']['fingerprint']}]")
    out.print(f"teacher  {details['teacher']['id']}  d={details['teacher']['dim']}  [{details['teacher']['fingerprint']}]")
    out.print(f"adapter  {adapter['path'] or '(built in)'}  {state}  [{adapter['fingerprint']}]")
    out.print(f"cache    {details['cache']}")


@app.command()
@handle_errors
def embed(texts: list[str] = typer.Argument(..., help="Texts to embed."),
          doc: bool = typer.Option(False, "--doc", help="Embed as documents (document instruction) instead of queries."),
          teacher: bool = typer.Option(False, "--teacher", help="Use the teacher's plain embedding instead."),
          config: Optional[str] = ConfigOpt, json: bool = JsonOpt):
    """Embedding vectors for scripting.

    Examples:
      genretrieve embed "how do I reset my password?" --json
      genretrieve embed "Passwords are reset from the account page." --doc --json
    """
    from .errors import UsageError

    if any(not t.strip() for t in texts):
        raise UsageError("empty text")
    encoder = _encoder(config)
    if teacher:
        vectors = encoder.teacher.encode(texts)
    else:
        vectors = encoder.encode_documents(texts) if doc else encoder.encode_queries(texts)
    for text, vector in zip(texts, vectors):
        if json:
            print_json({"text": text, "embedding": [round(float(x), 6) for x in vector]})
        else:
            head = " ".join(f"{x:+.3f}" for x in vector[:6])
            out.print(f"[bold]{text[:60]}[/bold]  dim={len(vector)}  [{head} ...]")


@app.command()
@handle_errors
def explain(queries: list[str] = typer.Argument(..., help="Queries to explain."),
            max_new_tokens: int = typer.Option(64, help="Tokens to decode from the soft prompts."),
            config: Optional[str] = ConfigOpt, json: bool = JsonOpt):
    """Decode what a query's embedding stands for, and the logit-lens tokens per adapter position.

    Example: genretrieve explain "what causes tides?"
    """
    from .models.decode import explain as explain_queries

    for item in explain_queries(_encoder(config), queries, max_new_tokens=max_new_tokens):
        if json:
            print_json({"query": item.query, "decoded": item.decoded, "logit_lens": item.lens})
            continue
        out.print(f"[bold]{item.query}[/bold]")
        out.print(f"  decoded: {item.decoded!r}")
        for position, tokens in enumerate(item.lens, 1):
            out.print(f"  <gen_{position}>: " + "  ".join(repr(t) for t in tokens), highlight=False)


IndexOpt = typer.Option(None, "--index", "-i", envvar="GENRETRIEVE_INDEX",
                        help="Index folder [default: indexes/default under the current directory].")


def _index_dir(index: Optional[Path]) -> Path:
    return index or Path("indexes") / "default"


@app.command()
@handle_errors
def index(path: Path = typer.Argument(..., help="Folder (or file) to index."),
          index: Optional[Path] = IndexOpt,
          doc_encoder: Optional[str] = typer.Option(None, "--doc-encoder", help="teacher | gen: what embeds the chunks."),
          kind: Optional[str] = typer.Option(None, "--kind", help="FAISS index: auto | flat | ivf | hnsw."),
          rebuild: bool = typer.Option(False, "--rebuild", help="Build a fresh index, swapped in only when complete."),
          no_chunk: bool = typer.Option(False, "--no-chunk", help="One chunk per document (pre-chunked input)."),
          config: Optional[str] = ConfigOpt, json: bool = JsonOpt):
    """Index a folder of .txt .md .rst .html .pdf .jsonl files; re-runs encode only what changed.

    Examples:
      genretrieve index ./docs
      genretrieve index ./docs --index indexes/docs --doc-encoder gen --rebuild
      genretrieve index notes.jsonl --no-chunk --json
    """
    from .config import load_config
    from .index.build import build_index
    from .ui import progress

    if not path.exists():
        from .errors import UsageError
        raise UsageError(f"{path} does not exist")
    cfg = load_config(config, index__doc_encoder=doc_encoder, index__kind=kind)
    encoder = _encoder(cfg)
    with progress() as bar:
        task = bar.add_task("indexing", total=None)
        summary = build_index(path, _index_dir(index), encoder, cfg, rebuild=rebuild, no_chunk=no_chunk,
                              report=lambda stage, done, total: bar.update(task, description=stage, completed=done, total=total))
    if json:
        return print_json(summary.to_dict())
    out.print(f"[bold]{_index_dir(index)}[/bold]: {summary.files_indexed} files indexed, {summary.files_unchanged} unchanged, "
              f"{summary.files_skipped} skipped, {len(summary.files_failed)} failed, {len(summary.files_removed)} removed")
    out.print(f"chunks: {summary.chunks_added} added ({summary.chunks_encoded} encoded), {summary.chunks_removed} removed, "
              f"{summary.chunks_total} total; {summary.seconds:.1f} s, {summary.chunks_per_s:.1f} chunks/s")
    for failure in summary.files_failed:
        err.print(f"[yellow]skipped[/yellow] {failure['path']}: {failure['error']}", highlight=False)
    for gone in summary.files_removed:
        out.print(f"removed {gone}")


def _read_queries(path: Path) -> list[tuple[str, str]]:
    """(id, text) pairs from a .txt (one per line) or .jsonl (`text`, optional `_id`) file."""
    import json as jsonlib

    from .errors import UsageError

    if not path.is_file():
        raise UsageError(f"queries file {path} does not exist")
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                record = jsonlib.loads(line)
                pairs.append((str(record.get("_id", number)), record["text"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise UsageError(f"{path}:{number}: expected a JSON object with a 'text' field ({exc})") from exc
        else:
            pairs.append((str(number), line.strip()))
    if not pairs:
        raise UsageError(f"{path} holds no queries")
    return pairs


@app.command()
@handle_errors
def search(query: Optional[str] = typer.Argument(None, help="The question or search text."),
           index: Optional[Path] = IndexOpt,
           k: Optional[int] = typer.Option(None, "-k", help="Hits per query [default: 10]."),
           mode: Optional[str] = typer.Option(None, "--mode", "-m", help="gen | teacher | keyword | hybrid."),
           path_glob: Optional[str] = typer.Option(None, "--path", help="Only chunks whose path matches this glob."),
           queries: Optional[Path] = typer.Option(None, "--queries", help="Search every query in a .txt or .jsonl file."),
           explain_query: bool = typer.Option(False, "--explain", help="Also print the response the query embedding stands for."),
           safety: Optional[str] = typer.Option(None, "--safety", help="off | warn | block: the harmful-query filter [default: warn]."),
           config: Optional[str] = ConfigOpt, json: bool = JsonOpt):
    """Search an index. Hits go to stdout as a table, or one JSON object per hit with --json.

    Examples:
      genretrieve search "how do I reset my password?"
      genretrieve search "install steps" --mode hybrid --path "docs/**/*.md" -k 5 --json
      genretrieve search --queries questions.jsonl --json > hits.jsonl
      genretrieve search "how do I make a weapon" --safety block
    """
    from .config import load_config
    from .errors import UsageError
    from .search import Searcher

    if (query is None) == (queries is None):
        raise UsageError("give a QUERY or --queries FILE (one of them)")
    if query is not None and not query.strip():
        raise UsageError("empty query")
    cfg = load_config(config, search__k=k, search__mode=mode, search__safety=safety)
    pairs = _read_queries(queries) if queries else [(None, query)]
    needs_models = cfg.search.mode != "keyword" or cfg.search.safety != "off" or explain_query
    encoder = _encoder(cfg) if needs_models else None
    if encoder is not None and not encoder.card["trained"] and cfg.search.mode in ("gen", "hybrid"):
        err.print("[yellow]warning:[/yellow] the adapter is untrained, so gen embeddings carry no meaning yet; "
                  "use --mode teacher or keyword, or train one (genretrieve train)")
    searcher = Searcher(_index_dir(index), encoder, cfg)
    if cfg.search.safety != "off" and encoder is not None and searcher.probe is None:
        err.print("[yellow]warning:[/yellow] this adapter has no safety probe, so harmful queries are not flagged")
    results = searcher.search([text for _, text in pairs], cfg.search.k, cfg.search.mode, path_glob, cfg.search.safety)
    explanations = {}
    if explain_query:
        from .models.decode import explain as explain_queries
        explanations = {e.query: e.decoded for e in explain_queries(encoder, [text for _, text in pairs])}
    for (query_id, text), result in zip(pairs, results):
        if json:
            extra = {"query_id": query_id, "query": text} if queries else {}
            if result.blocked:
                print_json({**extra, "blocked": True, "flagged": True, "hits": [],
                            "reason": "the query was judged harmful (--safety block)"})
            for hit in result.hits:
                print_json({**extra, **hit.to_dict()})
            if explain_query:
                print_json({**extra, "explain": explanations[text]})
            continue
        if explain_query:
            out.print(f"[dim]response the query stands for:[/dim] {explanations[text]}", highlight=False)
        if result.blocked:
            out.print(f"[red]blocked:[/red] {text!r} was judged harmful; no results shown (--safety block)")
            continue
        if result.flagged:
            err.print(f"[red]flagged:[/red] {text!r} looks like a harmful request (--safety warn)")
        from .render import hits_table
        out.print(hits_table(text, result.hits))


@app.command("indexes")
@handle_errors
def list_indexes(root: Path = typer.Option(Path("indexes"), "--root", help="Folder holding the indexes."),
                 json: bool = JsonOpt):
    """List the indexes under indexes/ with their size, model, adapter and last update.

    Example: genretrieve indexes --json
    """
    from .index.folder import IndexFolder, MANIFEST

    rows = [IndexFolder(m.parent).describe() for m in sorted(root.glob(f"*/{MANIFEST}"))]
    if json:
        for row in rows:
            print_json(row)
        return
    from .render import indexes_table
    out.print(indexes_table(rows))


@app.command()
@handle_errors
def rm(index: Path = typer.Argument(..., help="Index folder to delete."),
       yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")):
    """Delete an index folder (after confirmation).

    Example: genretrieve rm indexes/old --yes
    """
    from .index.folder import remove_index

    if not yes and not typer.confirm(f"delete the index at {index}?", err=True):
        raise typer.Exit(1)
    remove_index(index)
    err.print(f"deleted {index}")


@app.command()
@handle_errors
def train(out_dir: Path = typer.Option(Path("adapters/default"), "--out", "-o", help="Adapter folder to write."),
          queries: Optional[Path] = typer.Option(None, "--queries", help="Train on your own queries (.txt, .jsonl or .csv)."),
          from_index: Optional[Path] = typer.Option(None, "--from-index", help="Adapt to an index: the LLM writes queries for its chunks."),
          fit: Optional[str] = typer.Option(None, "--fit", help="closed-form | gradient | closed-form+gradient."),
          max_queries: Optional[int] = typer.Option(None, "--max-queries", help="Queries to use [default: 2500]."),
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
    from .config import load_config
    from .errors import UsageError
    from .train.run import read_query_file, train_adapter
    from .ui import progress

    if queries and from_index:
        raise UsageError("give --queries or --from-index, not both")
    cfg = load_config(config, train__fit=fit, train__max_queries=max_queries, model__adapter="fresh")
    user_queries = read_query_file(queries) if queries else None
    encoder = _encoder(cfg)
    if from_index:
        from .train.doc2query import queries_from_index
        user_queries = queries_from_index(encoder, from_index, cfg.train.max_queries, cfg.train.seed)
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


@app.command("import-adapter")
@handle_errors
def import_adapter(source: str = typer.Argument(..., help="A checkpoint folder in the paper's (llm2vec-gen) layout, or its hub id."),
                   out_dir: Path = typer.Option(..., "--out", "-o", help="Adapter folder to write."),
                   json: bool = JsonOpt):
    """Convert one of the paper's released adapters into a genretrieve adapter.

    The base model named in the checkpoint's run_config.yml is loaded once to fingerprint it.
    Refused: LoRA encoders, projections other than one linear layer, files that need unpickling.

    Examples:
      genretrieve import-adapter McGill-NLP/LLM2Vec-Gen-Qwen3-06B --out adapters/qwen3-0.6b-paper
      genretrieve import-adapter ./LLM2Vec-Gen-Qwen3-06B --out adapters/qwen3-0.6b-paper --json
    Use it with --config qwen3-0.6b and model.adapter: adapters/qwen3-0.6b-paper; index with --doc-encoder gen.
    """
    from .models.reference import import_reference

    card = import_reference(source, out_dir)
    if json:
        return print_json(card)
    out.print(f"adapter written to [bold]{out_dir}[/bold]: backbone {card['backbone']['id']} "
              f"[{card['backbone']['fingerprint']}], {card['n_tokens']} tokens, d={card['hidden_size']} -> {card['teacher_dim']}")
    out.print("its vectors are in the paper's teacher space: index with --doc-encoder gen; search with --mode gen, hybrid or keyword")


from .bench.cli import bench_app  # noqa: E402  (sub-command group lives with the benchmarks)

app.add_typer(bench_app, name="bench")
