"""`explain` tells the truth: only adapters trained with the reconstruction loss are decoded."""
import json

import pytest
from typer.testing import CliRunner

from genretrieve.cli import app
from genretrieve.models.decode import NOT_DECODABLE, decodable, explain

from .helpers import tiny_encoder

runner = CliRunner()


def decodable_tiny(monkeypatch):
    encoder = tiny_encoder()
    encoder.card = {**encoder.card, "trained": True, "decodable": True}
    monkeypatch.setattr("genretrieve.models.load.load_encoder", lambda config=None: encoder)
    return encoder


def test_the_card_says_what_decodes():
    assert not decodable({"trained": True, "training": {"fit": "closed-form"}})  # old cards: not decodable
    assert decodable({"decodable": True}) and not decodable({"decodable": False})
    assert decodable({"teacher_space": "reference"})  # the paper's adapters are trained with L_recon
    assert not decodable({"teacher_space": "reference", "decodable": False})


def test_a_decodable_adapter_is_decoded_with_a_lens_per_position(monkeypatch):
    encoder = decodable_tiny(monkeypatch)
    [item] = explain(encoder, ["what is the capital of france"], max_new_tokens=5, top=3)
    assert item.decodable and isinstance(item.decoded, str) and item.decoded and item.text == item.decoded
    assert len(item.lens) == encoder.adapter.n_tokens and all(len(row) == 3 for row in item.lens)
    result = runner.invoke(app, ["explain", "what is the capital of france", "--max-new-tokens", "4", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["decodable"] is True and row["decoded"] and len(row["logit_lens"]) == 10 and "message" not in row
    result = runner.invoke(app, ["explain", "what is the capital of france", "--max-new-tokens", "4"])
    assert result.exit_code == 0 and "decoded:" in result.stdout and "<gen_10>" in result.stdout


def test_a_readout_only_adapter_says_it_cannot_be_decoded(fake):
    # the fake encoder has no LM at all: nothing may be run for an undecodable adapter
    result = runner.invoke(app, ["explain", "what causes tides?", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row == {"query": "what causes tides?", "decodable": False, "decoded": None, "logit_lens": [],
                   "message": NOT_DECODABLE}
    result = runner.invoke(app, ["explain", "what causes tides?"])
    assert result.exit_code == 0 and "cannot be decoded" in result.stdout and "decoded:" not in result.stdout


def test_a_tiny_untrained_adapter_is_not_decoded(monkeypatch):
    encoder = tiny_encoder()  # fresh: P = H, never trained to decode
    monkeypatch.setattr("genretrieve.models.load.load_encoder", lambda config=None: encoder)
    [item] = explain(encoder, ["what is the capital of france"])
    assert not item.decodable and item.decoded is None and item.text == NOT_DECODABLE


@pytest.mark.parametrize("query", ["", "   "])
def test_an_empty_query_is_a_usage_error_before_any_model_loads(monkeypatch, query):
    def no_models(config=None):
        raise AssertionError("models were loaded")

    monkeypatch.setattr("genretrieve.models.load.load_encoder", no_models)
    result = runner.invoke(app, ["explain", "fine query", query])
    assert result.exit_code == 2 and "empty query" in result.output


def test_search_explain_says_so_too(fake, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "sea.txt").write_text("The ocean rises and falls twice a day because of the moon.\n")
    assert runner.invoke(app, ["index", str(docs), "--index", str(tmp_path / "ix")]).exit_code == 0
    result = runner.invoke(app, ["search", "why do tides happen", "--index", str(tmp_path / "ix"), "--explain", "--json"])
    assert result.exit_code == 0, result.output
    assert {"explain": NOT_DECODABLE} in [json.loads(line) for line in result.stdout.splitlines()]
