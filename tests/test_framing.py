"""Chat framing and prompt-initialised tokens on tiny models; the cached paths against full forwards.

Tolerances: fp32 tiny models; the cached and uncached paths differ only in summation order, so
1e-5 (states) and 1e-4 relative (gradients) bound float error, while a wrong mask or a wrong
position id moves the values by > 1e-2.
"""
import numpy as np
import pytest
import torch

from genretrieve.config import TrainConfig
from genretrieve.models.framing import chat_parts
from genretrieve.train.trainer import Trainer, TrainData

from .helpers import tiny_chat_encoder, tiny_encoder

TEXTS = ["how do i kill a python process ?", "what is the capital of france", "cat",
         "the moon and the sun and the sea and the river : why the tide ?"]


def test_a_chat_model_gets_the_chat_framing_and_tokens_from_the_assistant_header():
    encoder = tiny_chat_encoder()
    tokenizer = encoder.backbone.tokenizer
    assert encoder.card["framing"]["kind"] == "chat"
    before, after = chat_parts(tokenizer, "")
    text = "what is the capital of france"
    prefix, rows = encoder.token_ids([text], "")
    token_text = encoder.card["framing"]["token_text"]
    assert token_text.endswith(after)
    ids = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    # [template before the text][text][lead left over][10 tokens = the rest of the lead + the ending]
    init = ids(token_text)[-10:]
    assert prefix + rows[0] + init == ids(before + text + token_text)
    assert prefix == ids(before)
    embeddings = encoder.backbone.model.get_input_embeddings().weight
    assert torch.equal(encoder.adapter.tokens.data, embeddings[init].float())


def test_random_init_keeps_the_plain_framing():
    encoder = tiny_chat_encoder(token_init="random")
    assert encoder.card["framing"] == {"kind": "plain", "token_text": ""}
    prefix, _ = encoder.token_ids(TEXTS, "")
    assert prefix == []


def test_an_old_card_without_framing_encodes_plain():
    encoder = tiny_encoder()
    card = dict(encoder.card)
    card.pop("framing")
    from genretrieve.models.framing import Framing

    assert Framing.from_card(card).kind == "plain"


@pytest.mark.parametrize("make", [tiny_chat_encoder, tiny_encoder])
def test_prefix_cache_equals_the_full_forward_and_padding_changes_nothing(make):
    encoder = make()
    cached = encoder.encode_queries(TEXTS)
    encoder.prefix_cache = False
    full = encoder.encode_queries(TEXTS)
    np.testing.assert_allclose(cached, full, atol=1e-5)
    alone = np.stack([encoder.encode_queries([t])[0] for t in TEXTS])
    np.testing.assert_allclose(full, alone, atol=1e-5)
    assert np.abs(alone[0] - alone[3]).max() > 1e-3  # the rows differ, so the checks above can fail


def test_cached_training_step_gives_the_uncached_loss_and_gradients():
    encoder = tiny_chat_encoder()
    with torch.no_grad():
        encoder.adapter.align.weight.normal_()  # away from the symmetric start
    targets = torch.nn.functional.normalize(torch.randn(len(TEXTS), 16), dim=-1).numpy()
    settings = TrainConfig(batch_size=4, recon_weight=0.0)
    trainer = Trainer(encoder, TrainData(TEXTS, ["the answer"] * 4, targets), settings)
    grads = {}
    for cached in (True, False):
        trainer.cached = cached
        encoder.adapter.zero_grad(set_to_none=True)
        loss = trainer.backward(np.arange(4))["align"]
        grads[cached] = (loss, {n: p.grad.clone() for n, p in encoder.adapter.named_parameters()})
    assert grads[True][0] == pytest.approx(grads[False][0], rel=1e-5)
    for name, grad in grads[True][1].items():
        assert grad.abs().max() > 0, f"{name} got no gradient"
        torch.testing.assert_close(grad, grads[False][1][name], rtol=1e-4, atol=1e-6)
