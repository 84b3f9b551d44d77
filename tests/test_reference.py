"""The paper's checkpoint layout and the bigger-backbone configs, on tiny random Qwen3/Llama models.

A tiny checkpoint is written in the reference layout (PEFT trainable tokens when peft is installed,
else the same files by hand), imported, and our encoder must reproduce the embedding computed
here directly from those files with the real `<questionN>` tokens. No download anywhere.
"""
import json
import shutil
import time

import numpy as np
import pytest
import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer
from typer.testing import CliRunner

from genretrieve.cli import app
from genretrieve.config import Config, load_config
from genretrieve.errors import IncompatibleArtifact, MissingWeights, UsageError
from genretrieve.models.backbone import load_backbone
from genretrieve.models.load import build_encoder
from genretrieve.models.reference import REFERENCE_INSTRUCTIONS, import_reference, read_reference
from genretrieve.config import TrainConfig
from genretrieve.train.trainer import Trainer, TrainData

from .helpers import tiny_backbone, tiny_teacher

try:
    import peft
except ImportError:  # the files are then written by hand in peft's format
    peft = None

N = 10
SPECIALS = [f"<question{i}>" for i in range(1, N + 1)]
CPU = torch.device("cpu")
TEACHER_DIM = 24  # unlike the tiny teacher's 16: the imported space is not the loaded teacher's
TEXTS = ["what is the capital of france", "how do i reset my password ?", "why the tide", "cat"]
CONFIGS = {"qwen3-0.6b": "Qwen/Qwen3-0.6B", "qwen3-1.7b": "Qwen/Qwen3-1.7B", "qwen3-4b": "Qwen/Qwen3-4B",
           "qwen3-8b": "Qwen/Qwen3-8B", "llama-3.2-1b": "meta-llama/Llama-3.2-1B-Instruct"}


# --- writing a checkpoint in the reference layout ---------------------------------------------------
def save_projection(path, linear: nn.Linear, **config):
    """What the reference's ProjectionModel.save writes (bf16, like the released files)."""
    state = {"projection.weight": linear.weight.detach().bfloat16(), "projection.bias": linear.bias.detach().bfloat16()}
    torch.save({"state_dict": state, "config": {"input_dim": linear.in_features, "output_dim": linear.out_features,
                                                "dtype": "torch.bfloat16", "size": 1, "pooling_mode": "linear", **config}},
               path)


def write_trainable_tokens(encoder_dir, base_dir, token_ids, rows):
    """encoder/: a PEFT TRAINABLE_TOKENS adapter holding `rows` for `token_ids`, plus the model config."""
    model = AutoModel.from_pretrained(base_dir, dtype=torch.float32)
    model.resize_token_embeddings(max(token_ids) + 1, mean_resizing=False)
    if peft is not None:
        wrapped = peft.get_peft_model(model, peft.TrainableTokensConfig(token_indices=token_ids))
        with torch.no_grad():
            [delta] = [p for name, p in wrapped.named_parameters() if "trainable_tokens_delta" in name]
            delta.copy_(rows)
        wrapped.save_pretrained(encoder_dir)
    else:
        from safetensors.torch import save_file

        encoder_dir.mkdir(parents=True)
        config = {"peft_type": "TRAINABLE_TOKENS", "token_indices": token_ids, "target_modules": "embed_tokens",
                  "init_weights": True, "task_type": None, "base_model_name_or_path": str(base_dir),
                  "inference_mode": True, "revision": None}
        (encoder_dir / "adapter_config.json").write_text(json.dumps(config, indent=2))
        save_file({"base_model.model.embed_tokens.trainable_tokens_delta": rows.contiguous()},
                  encoder_dir / "adapter_model.safetensors")
    model.config.save_pretrained(encoder_dir)


def make_reference(root, seed=3, arch="qwen3", base_model=None):
    """A tiny reference checkpoint at root/ckpt over a tiny base model saved at root/base."""
    backbone = tiny_backbone(seed, arch=arch)
    base, ckpt = root / "base", root / "ckpt"
    backbone.model.save_pretrained(base)
    backbone.tokenizer.save_pretrained(base)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIALS})
    tokenizer.save_pretrained(ckpt)
    ids = tokenizer.convert_tokens_to_ids(SPECIALS)
    generator = torch.Generator().manual_seed(seed)
    d = backbone.hidden_size
    rows = torch.randn(N, d, generator=generator)
    # the trained rows in a shuffled token order, so the import must map them by token id
    order = torch.randperm(N, generator=generator).tolist()
    write_trainable_tokens(ckpt / "encoder", base, [ids[i] for i in order], rows[order])
    torch.manual_seed(seed)
    save_projection(ckpt / "reconstruction_mlp", nn.Linear(d, d))
    save_projection(ckpt / "alignment_mlp", nn.Linear(d, TEACHER_DIM))
    (ckpt / "encoder_decoder_config.json").write_text(json.dumps({"encoding_mode": "last_10_tokens", "save_decoder": False}))
    # as the reference writes it: `key: str(value)` lines, not always valid YAML
    (ckpt / "run_config.yml").write_text(
        f"model_name_or_path: {base_model or base}\ntorch_dtype: float32\nspecial_tokens: {SPECIALS}\n"
        "accelerator_config: AcceleratorConfig(split_batches=False, dispatch_batches=None)\n"
        "lr_scheduler_type: SchedulerType.LINEAR\n\n")
    return ckpt, base


def reference_embeddings(ckpt, base, texts, instruction):
    """The embedding computed directly from the checkpoint: real <questionN> tokens, one text at a time."""
    tokenizer = AutoTokenizer.from_pretrained(ckpt)
    model = AutoModel.from_pretrained(base, dtype=torch.float32)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    if peft is not None:  # exactly as the reference loads its encoder
        model = peft.PeftModel.from_pretrained(model, str(ckpt / "encoder"))
    else:
        from safetensors.torch import load_file

        config = json.loads((ckpt / "encoder" / "adapter_config.json").read_text())
        [rows] = load_file(ckpt / "encoder" / "adapter_model.safetensors").values()
        with torch.no_grad():
            model.get_input_embeddings().weight[config["token_indices"]] = rows
    layers = {}
    for name in ("reconstruction_mlp", "alignment_mlp"):
        state = torch.load(ckpt / name, weights_only=True)["state_dict"]
        layers[name] = lambda x, s=state: x @ s["projection.weight"].float().T + s["projection.bias"].float()
    out = []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(f"{instruction} {text}" + "".join(SPECIALS), return_tensors="pt")
            hidden = model(**ids).last_hidden_state[0, -N:]
            embedding = layers["alignment_mlp"](layers["reconstruction_mlp"](hidden)).mean(0)
            out.append(torch.nn.functional.normalize(embedding, dim=-1).numpy())
    return np.stack(out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    ckpt, base = make_reference(root)
    card = import_reference(str(ckpt), root / "imported")
    return {"root": root, "ckpt": ckpt, "base": base, "adapter": root / "imported", "card": card}


def encoder_for(reference, backbone=None):
    config = Config()
    config.model.adapter = str(reference["adapter"])
    backbone = backbone or load_backbone(str(reference["base"]), CPU, torch.float32)
    return build_encoder(backbone, tiny_teacher(), config)


# --- import and exact reproduction ---------------------------------------------------------------------
def test_import_writes_a_reference_card(reference):
    card = reference["card"]
    assert card["teacher_space"] == "reference" and card["trained"]
    assert card["teacher"]["id"] == "llm2vec-gen reference (paper's teacher)"
    assert card["teacher"]["fingerprint"].startswith("reference:")
    assert card["backbone"]["id"] == str(reference["base"])
    assert card["instructions"] == REFERENCE_INSTRUCTIONS
    assert card["token_strings"] == SPECIALS and card["n_tokens"] == N and card["teacher_dim"] == TEACHER_DIM


def test_encoder_reproduces_the_reference_embedding(reference):
    encoder = encoder_for(reference)
    assert encoder.teacher_space_matches is False and encoder.dim == TEACHER_DIM
    for encode, instruction in ((encoder.encode_queries, REFERENCE_INSTRUCTIONS["query"]),
                                (encoder.encode_documents, REFERENCE_INSTRUCTIONS["document"])):
        ours = encode(TEXTS)  # one padded batch; the reference encodes each text alone
        expected = reference_embeddings(reference["ckpt"], reference["base"], TEXTS, instruction)
        np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_imported_adapter_still_refuses_another_backbone(reference):
    with pytest.raises(IncompatibleArtifact, match="backbone"):
        encoder_for(reference, backbone=tiny_backbone(4, arch="qwen3"))


def test_index_and_search_refuse_the_teacher_space(reference, tmp_path):
    from genretrieve.index.build import build_index
    from genretrieve.search import Searcher

    encoder = encoder_for(reference)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("paris is the capital of france\n")
    config = Config()
    with pytest.raises(UsageError, match="--doc-encoder gen"):
        build_index(docs, tmp_path / "index", encoder, config)  # the default doc_encoder is teacher
    assert not (tmp_path / "index").exists()
    config.index.doc_encoder = "gen"
    build_index(docs, tmp_path / "index", encoder, config)
    searcher = Searcher(tmp_path / "index", encoder, config)
    assert searcher.search(["capital of france"], k=1, mode="gen")[0].hits
    with pytest.raises(UsageError, match="--mode teacher"):
        searcher.search(["capital of france"], k=1, mode="teacher")


def test_cli_import_adapter(reference, tmp_path):
    result = CliRunner().invoke(app, ["import-adapter", str(reference["ckpt"]), "--out", str(tmp_path / "a"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["fingerprint"] == reference["card"]["fingerprint"]
    broken = tmp_path / "broken"
    shutil.copytree(reference["ckpt"], broken)
    (broken / "alignment_mlp").write_bytes(b"not a tensor file")
    result = CliRunner().invoke(app, ["import-adapter", str(broken), "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "alignment_mlp" in result.output


# --- refusals -------------------------------------------------------------------------------------------
UNPICKLED = []


class Payload:
    """Unpickling this runs code; weights_only loading must refuse before that happens."""

    def __reduce__(self):
        return (UNPICKLED.append, ("ran",))


def _pickled_object(ckpt):
    blob = torch.load(ckpt / "alignment_mlp", weights_only=True)
    blob["config"]["note"] = Payload()
    torch.save(blob, ckpt / "alignment_mlp")


def _edit_projection(**changes):
    def edit(ckpt):
        blob = torch.load(ckpt / "reconstruction_mlp", weights_only=True)
        for key, value in changes.items():
            section, name = key.split("__")
            blob[section][name] = value
        torch.save(blob, ckpt / "reconstruction_mlp")
    return edit


def _lora(ckpt):
    config = json.loads((ckpt / "encoder" / "adapter_config.json").read_text())
    (ckpt / "encoder" / "adapter_config.json").write_text(json.dumps({**config, "peft_type": "LORA"}))


@pytest.mark.parametrize("damage, message", [
    (_pickled_object, "not a plain tensor file"),
    (_edit_projection(config__size=2), "size 1"),
    (_edit_projection(config__pooling_mode="mean_linear"), "pooling_mode"),
    (_edit_projection(state_dict__extra=torch.zeros(1)), "state_dict keys"),
    (_lora, "TRAINABLE_TOKENS"),
])
def test_malformed_checkpoints_are_refused(reference, tmp_path, damage, message):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(reference["ckpt"], ckpt)
    damage(ckpt)
    with pytest.raises(UsageError, match=message):
        read_reference(ckpt)
    assert not UNPICKLED


def test_unreachable_models_fail_cleanly(reference, tmp_path):
    start = time.perf_counter()
    with pytest.raises(MissingWeights, match="no-such/model"):
        load_backbone("no-such/model", CPU, torch.float32)
    with pytest.raises(MissingWeights, match="no-such/checkpoint"):
        import_reference("no-such/checkpoint", tmp_path / "a")
    ckpt = tmp_path / "ckpt"
    shutil.copytree(reference["ckpt"], ckpt)
    text = (ckpt / "run_config.yml").read_text().replace(str(reference["base"]), "no-such/model")
    (ckpt / "run_config.yml").write_text(text)
    with pytest.raises(MissingWeights, match="no-such/model"):
        import_reference(str(ckpt), tmp_path / "b")
    assert not (tmp_path / "b").exists()
    assert time.perf_counter() - start < 60  # HF_HUB_OFFLINE (conftest): no network wait


@pytest.mark.skipif(peft is None, reason="peft not installed")
def test_hand_written_format_matches_peft(tmp_path):
    """The by-hand writer (used without peft) produces what peft itself saves."""
    from safetensors import safe_open

    ckpt, _ = make_reference(tmp_path)
    config = json.loads((ckpt / "encoder" / "adapter_config.json").read_text())
    assert config["peft_type"] == "TRAINABLE_TOKENS" and config["target_modules"] == "embed_tokens"
    with safe_open(ckpt / "encoder" / "adapter_model.safetensors", framework="pt") as handle:
        assert "base_model.model.embed_tokens.trainable_tokens_delta" in handle.keys()


# --- bigger-backbone configs and tiny Qwen3/Llama on CPU ------------------------------------------------
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_backbone_configs_load(name):
    config = load_config(name)
    m = config.model
    assert m.backbone == CONFIGS[name] and m.teacher == "sentence-transformers/all-MiniLM-L6-v2"
    assert (m.device, m.dtype, m.max_length) == ("cuda", "bfloat16", 512)
    assert m.batch_size >= 1 and config.train.batch_size % config.train.grad_accum == 0


@pytest.mark.parametrize("arch", ["qwen3", "llama"])
def test_tiny_backbone_encodes_and_trains_one_step(arch):
    config = Config()
    config.model.adapter = "fresh"
    encoder = build_encoder(tiny_backbone(0, arch=arch), tiny_teacher(), config)
    vectors = encoder.encode_queries(TEXTS)
    assert vectors.shape == (4, encoder.dim) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    targets = torch.nn.functional.normalize(torch.randn(4, encoder.dim, generator=torch.Generator().manual_seed(0)), dim=-1)
    data = TrainData(TEXTS, ["paris", "reset it on the account page", "the moon", "a cat"], targets.numpy())
    before = {k: v.clone() for k, v in encoder.adapter.state_dict().items()}
    frozen = {k: v.clone() for k, v in encoder.backbone.model.state_dict().items()}
    trainer = Trainer(encoder, data, TrainConfig(steps=1, batch_size=4, warmup=1, eval_every=1))
    trainer.run()
    assert np.isfinite(trainer.log[0]["align"]) and np.isfinite(trainer.log[0]["recon"])
    assert all(not torch.equal(v, before[k]) for k, v in encoder.adapter.state_dict().items())
    assert all(torch.equal(v, frozen[k]) for k, v in encoder.backbone.model.state_dict().items())
