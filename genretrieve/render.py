"""Rich tables for the terminal: search hits (query terms highlighted) and index listings."""
from __future__ import annotations

import re

from rich.table import Table
from rich.text import Text

SNIPPET_CHARS = 240


def location(hit) -> str:
    where = hit.path
    if hit.page:
        where += f" p.{hit.page}"
    elif hit.start_line:
        where += f":{hit.start_line}" + (f"-{hit.end_line}" if hit.end_line and hit.end_line != hit.start_line else "")
    return where


def snippet(text: str, query: str) -> Text:
    """The chunk's start (or the window around the first query term), with the terms highlighted."""
    terms = [t for t in re.findall(r"\w{3,}", query.lower())]
    flat = " ".join(text.split())
    first = min((m.start() for t in terms for m in [re.search(re.escape(t), flat.lower())] if m), default=0)
    start = max(0, first - SNIPPET_CHARS // 3)
    piece = ("..." if start else "") + flat[start:start + SNIPPET_CHARS] + ("..." if len(flat) > start + SNIPPET_CHARS else "")
    rendered = Text(piece)
    for term in terms:
        rendered.highlight_regex(re.compile(re.escape(term), re.IGNORECASE), "bold yellow")
    return rendered


def hits_table(query: str, hits) -> Table:
    table = Table(title=f"[bold]{query}[/bold]", title_justify="left", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("where", overflow="fold", min_width=24, max_width=40)
    table.add_column("text")
    for hit in hits:
        flag = " [red]flagged[/red]" if hit.flagged else ""
        table.add_row(str(hit.rank), f"{hit.score:.3f}", location(hit) + flag, snippet(hit.text, query))
    if not hits:
        table.caption = "no hits"
    return table


def indexes_table(rows: list[dict]) -> Table:
    table = Table(title="indexes")
    for column in ("path", "chunks", "files", "MB", "backbone", "adapter", "doc encoder", "updated"):
        table.add_column(column)
    for row in rows:
        # a teacher-encoded index made without the LLM records neither backbone nor adapter: it depends on neither
        adapter = "-" if row["adapter"] is None else row["adapter"] + ("" if row["adapter_trained"] else " (untrained)")
        table.add_row(row["path"], str(row["chunks"]), str(row["files"]), f"{row['bytes'] / 1e6:.1f}", row["backbone"] or "-",
                      adapter, row["doc_encoder"], row["updated"])
    if not rows:
        table.caption = "no indexes; build one with: genretrieve index PATH"
    return table
