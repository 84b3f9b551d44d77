"""Commands about the models: info, embed, explain, import-adapter."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..ui import handle_errors, out, print_json
from . import ConfigOpt, IndexOpt, JsonOpt, _encoder, _index_dir, app


@app.command()
@handle_errors
def info(index: Optional[Path] = IndexOpt, config: Optional[str] = ConfigOpt, json: bool = JsonOpt):
    """Versions, device, dtype, backbone, teacher, adapter, safety filter and cache location.

    The safety line names the calibration search would use with this index (--index).
    Example: genretrieve info --json
    """
    from ..config import load_config
    from ..models.load import describe
    from ..safety import describe as describe_probe, load_probe

    cfg = load_config(config)
    encoder = _encoder(cfg)
    details = describe(encoder)
    probe = load_probe(encoder.card.get("path"), _index_dir(index))
    details["safety"] = {"mode": cfg.search.safety, "filter": describe_probe(probe),
                         "calibration": probe.calibration if probe else None}
    if json:
        return print_json(details)
    adapter = details["adapter"]
    state = "[green]trained[/green]" if adapter["trained"] else "[yellow]fresh, UNTRAINED (gen embeddings are not meaningful yet)[/yellow]"
    out.print(f"genretrieve {details['versions']['genretrieve']}  torch {details['versions']['torch']}  "
              f"transformers {details['versions']['transformers']}  faiss {details['versions']['faiss']}")
    out.print(f"device   {details['device']} ({details['dtype']}, {details['threads']} threads)")
    out.print(f"backbone {details['backbone']['id']}  d={details['backbone']['hidden_size']}  \\[{details['backbone']['fingerprint']}]")
    out.print(f"teacher  {details['teacher']['id']}  d={details['teacher']['dim']}  \\[{details['teacher']['fingerprint']}]")
    out.print(f"adapter  {adapter['path'] or '(built in)'}  {state}  \\[{adapter['fingerprint']}]")
    out.print(f"safety   {details['safety']['mode']}: {escape(details['safety']['filter'])}")
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
    from ..errors import UsageError

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
            out.print(f"[bold]{escape(text[:60])}[/bold]  dim={len(vector)}  \\[{head} ...]")


@app.command()
@handle_errors
def explain(queries: list[str] = typer.Argument(..., help="Queries to explain."),
            max_new_tokens: int = typer.Option(64, min=1, help="Tokens to decode from the soft prompts."),
            config: Optional[str] = ConfigOpt, json: bool = JsonOpt):
    """Decode what a query's embedding stands for, and the logit-lens tokens per adapter position.

    Only adapters trained with the reconstruction loss (card field "decodable") can be decoded; for any
    other adapter it says so instead of printing noise (--json: "decodable": false), exit code 0.

    Example: genretrieve explain "what causes tides?"
    """
    from ..errors import UsageError
    from ..models.decode import explain as explain_queries

    if any(not q.strip() for q in queries):
        raise UsageError("empty query")
    for item in explain_queries(_encoder(config), queries, max_new_tokens=max_new_tokens):
        if json:
            print_json(item.to_dict())
            continue
        out.print(f"[bold]{escape(item.query)}[/bold]")
        if not item.decodable:
            out.print(f"  [yellow]{escape(item.text)}[/yellow]")
            continue
        out.print(f"  decoded: {item.decoded!r}", markup=False)
        for position, tokens in enumerate(item.lens, 1):
            out.print(f"  <gen_{position}>: " + "  ".join(repr(t) for t in tokens), highlight=False, markup=False)


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
    from ..models.reference import import_reference

    card = import_reference(source, out_dir)
    if json:
        return print_json(card)
    out.print(f"adapter written to [bold]{out_dir}[/bold]: backbone {card['backbone']['id']} "
              f"\\[{card['backbone']['fingerprint']}], {card['n_tokens']} tokens, d={card['hidden_size']} -> {card['teacher_dim']}")
    out.print("its vectors are in the paper's teacher space: index with --doc-encoder gen; search with --mode gen or keyword")
