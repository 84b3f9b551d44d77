"""CLI conventions that users rely on: help with examples, exit codes, docs that cannot rot."""
import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from genretrieve.cli import app

runner = CliRunner()
README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def all_commands():
    command = typer.main.get_command(app)
    for name, sub in command.commands.items():
        if hasattr(sub, "commands"):
            for child in sub.commands:
                yield f"{name} {child}"
        else:
            yield name


def test_every_command_has_help_with_an_example_and_is_in_the_readme():
    for name in all_commands():
        result = runner.invoke(app, name.split() + ["--help"])
        assert result.exit_code == 0, name
        assert "genretrieve" in result.output and "Example" in result.output, f"{name}: no example in --help"
        assert re.search(rf"genretrieve {re.escape(name)}\b", README), f"{name} is not documented in README.md"


def test_unknown_option_is_a_usage_error():
    assert runner.invoke(app, ["search", "--no-such-flag"]).exit_code == 2


def test_bad_config_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  no_such_key: 1\n")
    result = runner.invoke(app, ["search", "x", "--config", str(bad)])
    assert result.exit_code == 2 and "no_such_key" in result.output
