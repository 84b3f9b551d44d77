"""Commands about index folders: index, indexes, rm."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..ui import err, handle_errors, out, print_json
from . import ConfigOpt, IndexOpt, JsonOpt, _encoder, _index_dir, app


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
    from ..config import load_config
    from ..index.build import build_index
    from ..ui import progress

    if not path.exists():
        from ..errors import UsageError
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


@app.command("indexes")
@handle_errors
def list_indexes(root: Path = typer.Option(Path("indexes"), "--root", help="Folder holding the indexes."),
                 json: bool = JsonOpt):
    """List the indexes under indexes/ with their size, model, adapter and last update.

    Example: genretrieve indexes --json
    """
    from ..index.folder import IndexFolder, MANIFEST

    rows = [IndexFolder(m.parent).describe() for m in sorted(root.glob(f"*/{MANIFEST}"))]
    if json:
        for row in rows:
            print_json(row)
        return
    from ..render import indexes_table
    out.print(indexes_table(rows))


@app.command()
@handle_errors
def rm(index: Path = typer.Argument(..., help="Index folder to delete."),
       yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")):
    """Delete an index folder (after confirmation).

    Example: genretrieve rm indexes/old --yes
    """
    from ..index.folder import remove_index

    if not yes and not typer.confirm(f"delete the index at {index}?", err=True):
        raise typer.Exit(1)
    remove_index(index)
    err.print(f"deleted {index}")
