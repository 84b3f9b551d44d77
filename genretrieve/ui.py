"""Terminal conventions shared by every command: data to stdout, progress and messages to stderr.

Progress bars appear only when stderr is a terminal. Errors become one red line and an exit
code: 2 for usage errors, 1 for runtime errors, never a traceback for a known failure. A reader
that closes the pipe (`| head -1`) ends the command quietly with exit 0. Help texts write
defaults as "[default: x]", which Typer's rich markup would take for a tag and drop;
`keep_help_defaults` escapes them once for the whole app.
"""
from __future__ import annotations

import functools
import inspect
import json
import os
import re
import sqlite3
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
        except BrokenPipeError:
            # the reader has what it wanted (`| head -1`); stdout now goes nowhere, so the final flush is quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0)
        except sqlite3.DatabaseError as exc:  # damage the open-time checks (store.check_intact) cannot see
            if "locked" in str(exc) or "busy" in str(exc):
                err.print(f"[red]error:[/red] the index is busy ({escape(str(exc))}): another process holds it "
                          "for writing; try again", highlight=False)
            else:
                err.print(f"[red]error:[/red] an index database is damaged ({escape(str(exc))}); rebuild it with "
                          "`genretrieve index PATH --index DIR --rebuild`", highlight=False)
            raise typer.Exit(1)
    return wrapper


_DEFAULT = re.compile(r"(?<!\\)\[default:")


def keep_help_defaults(app: typer.Typer) -> None:
    """Escape "[default: ...]" in every option's help of `app` and its sub-apps (shared options once)."""
    for command in app.registered_commands:
        for param in inspect.signature(command.callback).parameters.values():
            info = param.default
            if isinstance(info, (typer.models.OptionInfo, typer.models.ArgumentInfo)) and info.help:
                info.help = _DEFAULT.sub(r"\\[default:", info.help)
    for group in app.registered_groups:
        keep_help_defaults(group.typer_instance)
