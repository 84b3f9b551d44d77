"""Commands about index folders: index, merge, indexes, rm."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..ui import err, handle_errors, out, print_json
from . import ConfigOpt, IndexOpt, JsonOpt, _encoder, _index_dir, app


_NOTES = 50  # skipped/failed inputs named on the terminal; --json lists all


@app.command()
@handle_errors
def index(path: Path = typer.Argument(..., help="Folder (or file) to index."),
          index: Optional[Path] = IndexOpt,
          doc_encoder: Optional[str] = typer.Option(None, "--doc-encoder", help="teacher | gen: what embeds the chunks."),
          kind: Optional[str] = typer.Option(None, "--kind", help="FAISS index: auto | flat | ivf | hnsw (in RAM), "
                                             "ivf-sq8 | ivf-pq (on disk, memory-mapped: larger than RAM)."),
          rebuild: bool = typer.Option(False, "--rebuild", help="Build a fresh index, swapped in only when complete."),
          no_chunk: bool = typer.Option(False, "--no-chunk", help="One chunk per document (pre-chunked input)."),
          shard: Optional[str] = typer.Option(None, "--shard", help="I/N: index only shard I (0..N-1) of N into "
                                              "DIR/shards/I-of-N; join them with `genretrieve merge DIR`."),
          engine: str = typer.Option("local", "--engine", help="local | ray: read, chunk and encode on a Ray cluster."),
          address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: a local Ray)."),
          workers: Optional[int] = typer.Option(None, "--workers", help="Ray encoder workers (default: one per GPU)."),
          gpus_per_worker: Optional[float] = typer.Option(None, "--gpus-per-worker",
                                                          help="GPUs per Ray worker (default: 1 if the cluster has GPUs)."),
          config: Optional[str] = ConfigOpt, json: bool = JsonOpt):
    """Index a folder of .txt .md .rst .html .pdf .jsonl files; re-runs encode only what changed.

    Examples:
      genretrieve index ./docs
      genretrieve index ./docs --index indexes/docs --doc-encoder gen --rebuild
      genretrieve index notes.jsonl --no-chunk --json
      genretrieve index ./docs --index indexes/docs --shard 0/4   (then: genretrieve merge indexes/docs)
      genretrieve index ./docs --engine ray --address auto --gpus-per-worker 1
      genretrieve index ./docs --index indexes/big --kind ivf-sq8   (on disk: search mmaps the lists)
    """
    from ..config import load_config
    from ..errors import UsageError
    from ..index.build import build_index, preflight
    from ..ui import progress

    if engine not in ("local", "ray"):
        raise UsageError(f"--engine must be local or ray, not {engine!r}")
    if engine == "local" and (address or workers or gpus_per_worker is not None):
        raise UsageError("--address, --workers and --gpus-per-worker go with --engine ray")
    if shard and engine == "ray":
        raise UsageError("--shard and --engine ray are two ways to split the work: pick one")
    from ..index.shards import parse_shard
    shard_ix = parse_shard(shard) if shard else None
    cfg = load_config(config, index__doc_encoder=doc_encoder, index__kind=kind)
    preflight(path, _index_dir(index), rebuild, shard_ix)  # every check that needs no model, before loading them
    with progress() as bar:
        task = bar.add_task("indexing", total=None)
        report = lambda stage, done, total: bar.update(task, description=stage, completed=done, total=total)  # noqa: E731
        if engine == "ray":
            from ..index.ray_engine import RayOptions, build_index_ray, import_ray

            import_ray()
            summary = build_index_ray(path, _index_dir(index), cfg, RayOptions(address, workers, gpus_per_worker),
                                      rebuild=rebuild, no_chunk=no_chunk, report=report)
        else:
            # teacher-encoded documents need the teacher and the backbone's tokenizer, never the LLM itself
            summary = build_index(path, _index_dir(index), _encoder(cfg, llm=cfg.index.doc_encoder != "teacher"), cfg, rebuild=rebuild, no_chunk=no_chunk,
                                  report=report, shard=shard_ix)
    if json:
        return print_json(summary.to_dict())
    where = _index_dir(index) if not shard_ix else f"{_index_dir(index)} shard {shard_ix[0]}/{shard_ix[1]}"
    out.print(f"[bold]{where}[/bold]: {summary.files_indexed} files indexed, {summary.files_unchanged} unchanged, "
              f"{summary.files_skipped} skipped, {len(summary.files_failed)} failed, {len(summary.files_removed)} removed")
    out.print(f"chunks: {summary.chunks_added} added ({summary.chunks_encoded} encoded), {summary.chunks_removed} removed, "
              f"{summary.chunks_total} total; {summary.seconds:.1f} s, {summary.chunks_per_s:.1f} chunks/s")
    notes = [("failed", f["path"], f["error"]) for f in summary.files_failed]
    notes += [("skipped", s["path"], s["reason"]) for s in summary.skipped]
    notes += [("bad record", f"{b['path']}:{b['line']}", b["error"]) for b in summary.bad_records]
    for what, where_, why in notes[:_NOTES]:
        err.print(f"[yellow]{what}[/yellow] {escape(where_)}: {escape(why)}", highlight=False)
    if len(notes) > _NOTES:
        err.print(f"... and {len(notes) - _NOTES} more (all of them: --json)")
    for gone in summary.files_removed:
        out.print(f"removed {gone}", markup=False)


@app.command()
@handle_errors
def merge(index: Path = typer.Argument(..., help="Index folder whose shards/ to merge."),
          kind: Optional[str] = typer.Option(None, "--kind", help="FAISS index: auto | flat | ivf | hnsw | ivf-sq8 | "
                                             "ivf-pq (default: the shards' config); on-disk kinds add one shard at a time."),
          json: bool = JsonOpt):
    """Check the shards in DIR/shards (same models, none missing, no overlap) and build one index at DIR.

    Examples:
      genretrieve merge indexes/docs  (after genretrieve index ./docs --index indexes/docs --shard I/N, I = 0..N-1)
      genretrieve merge indexes/docs --kind ivf-sq8   (an on-disk index larger than RAM, one shard added at a time)
    """
    from ..index.merge import merge_shards
    from ..ui import progress

    with progress() as bar:
        task = bar.add_task("merging", total=None)
        summary = merge_shards(index, kind=kind, report=lambda stage, done, total: bar.update(
            task, description=stage, completed=done, total=total))
    if json:
        return print_json(summary.to_dict())
    out.print(f"[bold]{index}[/bold]: merged {summary.shards} shards, {summary.files} files, {summary.chunks} chunks "
              f"in {summary.seconds:.1f} s; vectors: {summary.vectors.get('kind')}")
    for failure in summary.files_failed:
        err.print(f"[yellow]skipped when its shard ran[/yellow] {escape(failure['path'])}: {escape(failure['error'])}", highlight=False)


@app.command("indexes")
@handle_errors
def list_indexes(root: Path = typer.Option(Path("indexes"), "--root", help="Folder holding the indexes."),
                 json: bool = JsonOpt):
    """List the indexes under indexes/ with their size, model, adapter and last update.

    Example: genretrieve indexes --json
    """
    from ..errors import DamagedIndex
    from ..index.folder import IndexFolder, MANIFEST

    rows, damaged = [], []
    for manifest in sorted(root.glob(f"*/{MANIFEST}")):
        try:
            folder = IndexFolder(manifest.parent, readonly=True)
            rows.append(folder.describe())
            folder.close()
        except DamagedIndex as exc:
            damaged.append({"path": str(manifest.parent), "damaged": str(exc)})
    if json:
        for row in rows + damaged:
            print_json(row)
        return
    from ..render import indexes_table
    out.print(indexes_table(rows))
    for row in damaged:
        out.print(f"[red]damaged:[/red] {escape(row['damaged'])}", highlight=False)


@app.command()
@handle_errors
def rm(index: Path = typer.Argument(..., help="Index folder to delete."),
       yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")):
    """Delete an index folder (after confirmation): only a folder that is an index, and only the index's own files.

    Example: genretrieve rm indexes/old --yes
    """
    from ..index.folder import remove_index

    if not yes and not typer.confirm(f"delete the index at {index}?", err=True):
        err.print("nothing deleted")
        return
    kept = remove_index(index)
    if kept:
        err.print(f"deleted the index files in {escape(str(index))}; kept what is not the index's: "
                  f"{escape(', '.join(kept))}", highlight=False)
    else:
        err.print(f"deleted {escape(str(index))}", highlight=False)
