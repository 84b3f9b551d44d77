"""The `genretrieve` command: a thin Typer layer; each command parses flags and calls the library.

One module per command group (models, index, search, train; bench lives with the benchmarks);
this file holds the app and the options and helpers they share.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..ui import ConfigOpt, JsonOpt, err, keep_help_defaults  # noqa: F401  (the command modules import them from here)

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
                  help="Semantic search with generative embeddings: a query embeds as the answer a frozen LLM would give.")

IndexOpt = typer.Option(None, "--index", "-i", envvar="GENRETRIEVE_INDEX",
                        help="Index folder [default: indexes/default under the current directory].")


def _index_dir(index: Optional[Path]) -> Path:
    return index or Path("indexes") / "default"


def _encoder(config, llm: bool = True):
    """Load the models for a config (a name/path or a Config), with a spinner on a terminal.

    llm=False loads the teacher alone, for commands that never run the LLM (it starts in a fraction of the time)."""
    from contextlib import nullcontext

    from ..config import load_config
    from ..models import load

    with err.status("loading models", spinner="dots") if err.is_terminal else nullcontext():
        return (load.load_encoder if llm else load.load_teacher_encoder)(load_config(config))


from . import models, indexing, search, train  # noqa: E402,F401,I001  (each registers its commands on app; this order is --help's)
from . import safety  # noqa: E402,F401,I001
from . import serve  # noqa: E402,F401  (registers `genretrieve serve`)
from ..bench.cli import bench_app  # noqa: E402

app.add_typer(bench_app, name="bench")
keep_help_defaults(app)  # after every command is registered: "[default: x]" in help texts survives rich markup
