"""Every adapter shipped in genretrieve/data/adapters is complete, trained, and bound to its models."""
import json

import pytest

from genretrieve.errors import IncompatibleArtifact
from genretrieve.models.adapter import load_adapter, read_card
from genretrieve.models.load import SHIPPED_ADAPTERS, shipped_adapter_for
from genretrieve.safety import SafetyProbe

FOLDERS = sorted(p.parent for p in SHIPPED_ADAPTERS.glob("*/adapter.json"))


def test_the_default_and_the_large_backbone_have_adapters():
    names = {folder.name for folder in FOLDERS}
    assert {"smollm2-minilm", "qwen2.5-coder-1.5b-minilm"} <= names


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_shipped_adapter_is_trained_and_refuses_other_models(folder):
    card = read_card(folder)
    backbone, teacher = card["backbone"]["fingerprint"], card["teacher"]["fingerprint"]
    adapter, loaded = load_adapter(folder, backbone, teacher)
    assert card["trained"] and loaded["fingerprint"] == adapter.fingerprint() == card["fingerprint"]
    assert (adapter.n_tokens, card["teacher_dim"]) == (10, 384)
    assert shipped_adapter_for(backbone, teacher) == folder  # what adapter: default picks for these models
    with pytest.raises(IncompatibleArtifact):
        load_adapter(folder, "0" * 16, teacher)
    record = json.loads((folder / "training.json").read_text())
    assert record["heldout"]["top1"] > 3 * record["heldout_untrained"]["top1"]  # the training did something
    probe = SafetyProbe.load(str(folder))
    assert probe is not None and set(probe.needs) <= {"states", "gen", "teacher"}
    width = {"states": card["hidden_size"], "gen": 384, "teacher": 384}
    assert len(probe.weights) == sum(width[name] for name in probe.needs)  # fitted for this adapter's models
