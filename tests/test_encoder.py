"""The generative encoder on tiny random-weight models: shapes, padding, truncation, adapters."""
import numpy as np
import pytest
import torch

from genretrieve.errors import IncompatibleArtifact
from genretrieve.models.adapter import load_adapter, save_adapter

from .helpers import tiny_backbone, tiny_encoder, tiny_teacher

TEXTS = ["how do i kill a python process ?", "what is the capital of france", "cat",
         "the moon and the sun and the sea and the river : why the tide ?"]


def test_output_is_unit_vectors_of_teacher_dimension():
    encoder = tiny_encoder()
    vectors = encoder.encode_queries(TEXTS)
    assert vectors.shape == (len(TEXTS), encoder.teacher.dim) == (4, 16)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_padded_batch_equals_one_by_one_and_order_is_restored():
    encoder = tiny_encoder(batch_size=4)
    batched = encoder.encode_queries(TEXTS)
    alone = np.stack([encoder.encode_queries([t])[0] for t in TEXTS])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    # the rows differ from each other, so a shuffled order could not pass the check above
    assert np.abs(alone[0] - alone[3]).max() > 1e-3


def test_truncation_cuts_the_text_and_keeps_the_adapter_tokens_last():
    encoder = tiny_encoder(max_length=16)
    long_text = " ".join(["the sea"] * 50)
    prefix, rows = encoder.token_ids([long_text], encoder.query_instruction)
    assert len(prefix) + len(rows[0]) == 16 - encoder.adapter.n_tokens
    # the embedding still depends on the adapter tokens, so they were not cut away
    before = encoder.encode_queries([long_text])
    with torch.no_grad():
        encoder.adapter.tokens.mul_(3.0)
    assert np.abs(encoder.encode_queries([long_text]) - before).max() > 1e-3


def test_save_and_load_round_trip_gives_identical_embeddings(tmp_path):
    encoder = tiny_encoder()
    with torch.no_grad():
        encoder.adapter.align.weight.add_(0.5)  # not the deterministic fresh state
    save_adapter(encoder.adapter, encoder.card, tmp_path / "adapter")
    reloaded = tiny_encoder(adapter=str(tmp_path / "adapter"))
    np.testing.assert_array_equal(encoder.encode_queries(TEXTS), reloaded.encode_queries(TEXTS))
    assert reloaded.card["fingerprint"] == encoder.adapter.fingerprint()


def test_adapter_for_another_backbone_is_refused(tmp_path):
    encoder = tiny_encoder(seed=0)
    save_adapter(encoder.adapter, encoder.card, tmp_path / "adapter")
    other = tiny_backbone(seed=1)
    with pytest.raises(IncompatibleArtifact, match="backbone"):
        load_adapter(tmp_path / "adapter", other.fingerprint, tiny_teacher().fingerprint)


def test_one_optimiser_step_moves_the_adapter_and_never_the_backbone():
    encoder = tiny_encoder()
    backbone_before = {k: v.clone() for k, v in encoder.backbone.model.state_dict().items()}
    adapter_before = {k: v.clone() for k, v in encoder.adapter.state_dict().items()}
    optimizer = torch.optim.AdamW(encoder.adapter.parameters(), lr=1e-2)
    hidden = encoder.hidden_states(*encoder.token_ids(TEXTS, encoder.query_instruction))
    target = torch.nn.functional.normalize(torch.randn(len(TEXTS), 16), dim=-1)
    loss = torch.nn.functional.mse_loss(torch.nn.functional.normalize(encoder.adapter(hidden), dim=-1), target)
    loss.backward()
    optimizer.step()
    for name, tensor in encoder.backbone.model.state_dict().items():
        assert torch.equal(tensor, backbone_before[name]), name
    for name, tensor in encoder.adapter.state_dict().items():
        assert not torch.equal(tensor, adapter_before[name]), f"{name} did not move"


def test_documents_use_the_document_instruction():
    encoder = tiny_encoder()
    assert not np.allclose(encoder.encode_documents(TEXTS[:1]), encoder.encode_queries(TEXTS[:1]))
    np.testing.assert_allclose(encoder.encode_documents(TEXTS[:1]),
                               encoder.encode_queries(TEXTS[:1], instruction=encoder.document_instruction), atol=1e-6)


def test_missing_packaged_weights_name_the_install_command(monkeypatch):
    import importlib.util

    from genretrieve.errors import MissingWeights
    from genretrieve.models.assets import resolve_model

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingWeights, match="make install"):
        resolve_model("packaged:smollm2")


def test_an_unreachable_hub_model_fails_with_one_clear_message(monkeypatch, tmp_path):
    from genretrieve.errors import MissingWeights
    from genretrieve.models.backbone import load_backbone

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingWeights, match="HF_HUB_OFFLINE"):
        load_backbone("no-such-org/no-such-model", torch.device("cpu"), torch.float32)


def test_queries_with_states_is_one_pass_matching_both_apis():
    """encode_queries_with_states gives encode_queries' vectors and mean_states' states, in one forward pass."""
    import numpy as np

    from genretrieve.train.fit import mean_states

    from .helpers import tiny_encoder

    encoder = tiny_encoder()
    texts = ["how do I kill a python process", "what is the capital of france ?", "tide"]
    calls = []
    forward = encoder.hidden_states
    encoder.hidden_states = lambda prefix, rows: calls.append(len(rows)) or forward(prefix, rows)
    gen, states = encoder.encode_queries_with_states(texts)
    assert sum(calls) == len(texts)  # every text through the backbone once
    encoder.hidden_states = forward
    assert np.allclose(gen, encoder.encode_queries(texts), atol=1e-6)
    assert np.allclose(states, mean_states(encoder, texts), atol=1e-5)
    assert states.shape == (3, encoder.backbone.hidden_size)
