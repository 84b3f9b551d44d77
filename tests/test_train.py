"""Training on tiny in-process models: losses fall, resume is exact, only the adapter moves."""
import pytest
import numpy as np
import torch

from genretrieve.train.fit import fit_closed_form, predict, ridge
from genretrieve.config import TrainConfig
from genretrieve.train.trainer import Trainer, TrainData

from .helpers import tiny_encoder

QUERIES = ["what is the capital of france", "how do i kill a python process", "why the tide", "what is a cat",
           "where is paris", "how do i reset my password", "what is the sun", "what is water"]
RESPONSES = ["paris is the capital of france", "kill the process", "the moon and the sea", "a cat is a cat",
             "paris is in france", "reset the password on the account page", "the sun is fire", "water is water"]


def toy_data(encoder):
    targets = torch.nn.functional.normalize(torch.randn(len(QUERIES), encoder.dim, generator=torch.Generator().manual_seed(1)), dim=-1)
    return TrainData(QUERIES, RESPONSES, targets.numpy(), QUERIES[:4], targets.numpy()[:4])


def settings(**kw):
    return TrainConfig(**{"steps": 30, "batch_size": 4, "lr": 1e-1, "tokens_lr": 1e-1, "warmup": 3, "recon_weight": 1.0,
                               "eval_every": 10, "checkpoint_every": 5, **kw})


def test_losses_fall_over_30_steps():
    encoder = tiny_encoder()
    trainer = Trainer(encoder, toy_data(encoder), settings())
    everything = np.arange(len(QUERIES))
    with torch.no_grad():
        before = [loss.item() for loss in trainer.losses(everything)]
    trainer.run()
    with torch.no_grad():
        after = [loss.item() for loss in trainer.losses(everything)]
    # the states at the 10 positions barely depend on the query in a random model, so the best
    # constant (the targets' mean) bounds how far align can fall here
    assert after[0] < 0.85 * before[0], (before, after)  # align
    assert after[1] < before[1], (before, after)  # recon


def test_resume_equals_an_uninterrupted_run(tmp_path):
    straight = tiny_encoder()
    Trainer(straight, toy_data(straight), settings(steps=10)).run()

    interrupted = tiny_encoder()
    Trainer(interrupted, toy_data(interrupted), settings(steps=10), tmp_path / "ckpt").run(time_budget_s=0)  # stops after 1 step
    resumed = tiny_encoder()
    trainer = Trainer(resumed, toy_data(resumed), settings(steps=10), tmp_path / "ckpt")
    assert trainer.load_checkpoint() and trainer.step == 1
    trainer.run()
    for name, tensor in straight.adapter.state_dict().items():
        torch.testing.assert_close(resumed.adapter.state_dict()[name], tensor, rtol=1e-5, atol=1e-6)


def test_training_changes_only_the_adapter():
    encoder = tiny_encoder()
    before = {k: v.clone() for k, v in encoder.backbone.model.state_dict().items()}
    tokens = encoder.adapter.tokens.detach().clone()
    Trainer(encoder, toy_data(encoder), settings(steps=3)).run()
    assert all(torch.equal(v, before[k]) for k, v in encoder.backbone.model.state_dict().items())
    assert not torch.equal(tokens, encoder.adapter.tokens)


def test_ridge_recovers_a_known_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 20)) * rng.uniform(0.1, 10, size=20) + rng.normal(size=20)
    true = rng.normal(size=(5, 20))
    y = x @ true.T + 3.0
    fit = ridge(x, y, lam=1e-6)
    np.testing.assert_allclose(predict(x, fit), y, atol=1e-4)


def test_closed_form_fit_folds_into_the_adapter_and_encodes_like_the_fit():
    encoder = tiny_encoder()
    from genretrieve.train.fit import mean_states

    features = mean_states(encoder, QUERIES)
    targets = np.random.default_rng(0).normal(size=(len(QUERIES), encoder.dim))
    result = fit_closed_form(encoder.adapter, features, targets, features, targets, lambdas=(1e-3,))
    expected = predict(features, ridge(features, targets, 1e-3))
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(encoder.encode_queries(QUERIES), expected, atol=1e-4)
    assert result["heldout"]["top1"] == 1.0


def test_a_second_run_hits_the_response_cache(tmp_path):
    from genretrieve.train.responses import ResponseCache, ensure_responses

    encoder = tiny_encoder()
    cache = ResponseCache(tmp_path / "responses.sqlite")
    first, stats = ensure_responses(encoder, QUERIES[:3], cache, max_new_tokens=4, batch_size=2)
    assert stats["generated"] == 3 and all(isinstance(r, str) for r in first)
    again, stats = ensure_responses(encoder, QUERIES[:3], ResponseCache(tmp_path / "responses.sqlite"), max_new_tokens=4)
    assert stats == {"cached": 3, "generated": 0, "tokens": 0, "seconds": 0.0} and again == first
    # other generation settings are other cache entries
    _, stats = ensure_responses(encoder, QUERIES[:1], cache, max_new_tokens=5)
    assert stats["generated"] == 1


def test_train_adapter_end_to_end_writes_a_loadable_adapter(tmp_path, monkeypatch):
    from genretrieve.config import Config
    from genretrieve.train.run import train_adapter

    monkeypatch.setenv("GENRETRIEVE_HOME", str(tmp_path / "home"))
    encoder = tiny_encoder()
    config = Config()
    config.train.max_new_tokens, config.train.heldout, config.train.fit = 4, 0.5, "closed-form+gradient"
    config.train.steps, config.train.batch_size, config.train.eval_every = 2, 2, 1
    queries = [{"text": q} for q in QUERIES] + [{"text": "how to hurt a cat", "safety": True, "refusal": "I can't help with that."}]
    record = train_adapter(encoder, config, tmp_path / "adapter", queries)
    assert record["generation"]["safety_refusals_substituted"] == 1  # the random model did not refuse
    assert {"cosine", "top1"} <= set(record["heldout"]) and record["gradient"]["steps"] == 2
    assert (tmp_path / "adapter" / "training.json").exists() and (tmp_path / "adapter" / "loss.png").exists()
    loaded = tiny_encoder(adapter=str(tmp_path / "adapter"))
    assert loaded.card["trained"] and loaded.card["training"]["fit"] == "closed-form+gradient"


def test_shipped_answers_are_used_instead_of_generating(tmp_path, monkeypatch):
    import gzip
    import json

    from genretrieve.train import responses
    from genretrieve.train.responses import ResponseCache, answer_settings, ensure_responses, response_key

    encoder = tiny_encoder()
    settings = answer_settings(4)
    shipped = tmp_path / "answers"
    shipped.mkdir()
    rows = [{"key": response_key(encoder.backbone.fingerprint, settings, q), "backbone": encoder.backbone.fingerprint,
             "settings": json.dumps(settings), "query": q, "response": f"shipped answer {i}"} for i, q in enumerate(QUERIES[:3])]
    (shipped / "tiny.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    monkeypatch.setattr(responses, "SHIPPED_ANSWERS", shipped)
    monkeypatch.setattr(responses, "generate_answers", lambda *a, **k: pytest.fail("generated an answer that ships"))
    answers, stats = ensure_responses(encoder, QUERIES[:3], ResponseCache(tmp_path / "cache.sqlite"), max_new_tokens=4)
    assert answers == ["shipped answer 0", "shipped answer 1", "shipped answer 2"]
    assert stats["generated"] == 0
    # answers shipped for other settings (or another backbone) are not used
    monkeypatch.setattr(responses, "generate_answers", lambda backbone, texts, *a, **k: ["fresh"] * len(texts))
    answers, stats = ensure_responses(encoder, QUERIES[:3], ResponseCache(tmp_path / "cache.sqlite"), max_new_tokens=5)
    assert answers == ["fresh"] * 3 and stats["generated"] == 3


@pytest.mark.parametrize("answers, config", [("smollm2", None), ("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b")])
def test_the_shipped_answers_cover_each_configs_training_queries(answers, config):
    """So `genretrieve train` with a shipped config generates nothing on a new machine."""
    import gzip
    import json

    from genretrieve.config import load_config
    from genretrieve.train.responses import SHIPPED_ANSWERS, answer_settings
    from genretrieve.train.run import choose_queries

    with gzip.open(SHIPPED_ANSWERS / f"{answers}.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    config = load_config(config)
    queries, _ = choose_queries(config, None)
    assert {q["text"] for q in queries} <= {r["query"] for r in rows}
    assert {r["settings"] for r in rows} == {json.dumps(answer_settings(config.train.max_new_tokens))}
    assert len({r["backbone"] for r in rows}) == 1


def test_default_training_queries_add_the_natural_fit_part_only():
    from genretrieve.bench.beir import load_beir
    from genretrieve.bench.retrieval import DEVSET
    from genretrieve.config import Config
    from genretrieve.safety.data import natural
    from genretrieve.train.run import choose_queries

    queries, source = choose_queries(Config(), None)
    texts = {q["text"] for q in queries}
    assert set(natural("fit")) <= texts and source["natural_questions"] > 900
    assert texts.isdisjoint(natural("calibrate") + natural("test"))  # they measure the filter
    assert texts.isdisjoint(load_beir(DEVSET).queries.values())  # the dev set stays unseen
    config = Config()
    config.train.natural_questions = False
    pool_only, _ = choose_queries(config, None)
    assert len(pool_only) == config.train.max_queries and len(queries) == len(pool_only) + source["natural_questions"]
    config = Config()
    config.train.max_natural_questions = 100  # a sample, first in hash order: a larger one holds it
    sample, _ = choose_queries(config, None)
    config.train.max_natural_questions = 200
    larger, _ = choose_queries(config, None)
    natural_of = lambda qs: [q["text"] for q in qs if q["source"] == "natural"]  # noqa: E731
    assert len(natural_of(sample)) == 100 and set(natural_of(sample)) < set(natural_of(larger)) < set(natural("fit"))
    own, _ = choose_queries(Config(), [{"text": "what is a tuple?"}])  # a user's queries are theirs alone
    assert [q["text"] for q in own] == ["what is a tuple?"]
