"""Terminal conventions shared by every command: data to stdout, progress and messages to stderr.

Progress bars appear only when stderr is a terminal. Errors become one red line and an exit
code: 2 for usage errors, 1 for runtime errors, never a traceback for a known failure.
"""
from __future__ import annotations

import functools
import json
import sys

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .config import ConfigError
from .errors import GenretrieveError, UsageError

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

# options every command group takes the same way
ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config: a path or a name under configs/.")
JsonOpt = typer.Option(False, "--json", help="Machine-readable output on stdout.")


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=err, disable=not err.is_terminal, transient=True)


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


def handle_errors(command):
    """Turn the project's exceptions into a message and the documented exit code."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (UsageError, ConfigError) as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(2)
        except GenretrieveError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1)
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]; what was written before stays valid")
            raise typer.Exit(130)
    return wrapper
