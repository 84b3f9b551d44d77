"""Import the paper's released adapters (the llm2vec-gen checkpoint layout) as genretrieve adapters.

A reference checkpoint keeps its token rows in a PEFT trainable-tokens adapter and its two linear
layers in `torch.save`d files; both map one-to-one onto GenAdapter. Only tensors are read (the
projection files through `torch.load(weights_only=True)`), anything unexpected is refused, and the
base model is loaded once so the adapter carries its fingerprint like any other.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import IncompatibleArtifact, UsageError
from .adapter import GenAdapter, make_card, save_adapter
from .assets import hub_error

REFERENCE_TEACHER_ID = "llm2vec-gen reference (paper's teacher)"
# The paper's retrieval instruction for queries and its (only) instruction for documents.
REFERENCE_INSTRUCTIONS = {"query": "Generate a passage that best answers this question:",
                          "document": "Summarize the following passage:"}
PROJECTION_KEYS = {"projection.weight", "projection.bias"}


@dataclass
class ReferenceCheckpoint:
    folder: Path
    base_model: str  # run_config.yml: model_name_or_path
    torch_dtype: str | None
    encoding_mode: str
    save_decoder: bool
    token_strings: list[str]
    tokens: torch.Tensor  # (n, d): the trained rows of <question1>..<questionN>, in order
    recon: tuple[torch.Tensor, torch.Tensor]  # weight (d, d), bias (d,)
    align: tuple[torch.Tensor, torch.Tensor]  # weight (d_T, d), bias (d_T,)
    align_sha256: str


def fetch_checkpoint(spec: str) -> Path:
    """A local folder as is; anything else is a hub id, downloaded without the optional `decoder/`."""
    if Path(spec).is_dir():
        return Path(spec)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(spec, ignore_patterns=["decoder/*"]))
    except Exception as exc:  # offline, unknown repo, malformed id: all mean "not available here"
        raise hub_error(spec, exc) from exc


def read_run_config(path: Path) -> dict[str, str]:
    """`key: value` lines of run_config.yml, last one wins.

    The reference writes this file as `f"{key}: {value}"` per training argument (appending on
    resume), which is not always valid YAML, so only plain top-level lines are read.
    """
    if not path.is_file():
        raise UsageError(f"not a reference checkpoint: {path.name} is missing from {path.parent}")
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z_][\w.]*):\s*(.*?)\s*$", line)
        if match:
            values[match.group(1)] = match.group(2).strip("'\"")
    return values


def read_projection(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of a one-layer linear ProjectionModel file, as float32; refuse anything else."""
    name = path.name
    if not path.is_file():
        raise UsageError(f"not a reference checkpoint: {name} is missing from {path.parent}")
    try:
        # weights_only: tensors and plain containers only; a file that needs arbitrary unpickling fails here
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UsageError(f"{name}: refused, it is not a plain tensor file "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from exc
    if not isinstance(blob, dict) or set(blob) != {"state_dict", "config"}:
        keys = sorted(blob) if isinstance(blob, dict) else type(blob).__name__
        raise UsageError(f"{name}: refused, expected a dict with state_dict and config, got {keys}")
    config, state = blob["config"], blob["state_dict"]
    if not isinstance(config, dict) or config.get("size") != 1 or config.get("pooling_mode") != "linear":
        raise UsageError(f"{name}: refused, only size 1 with pooling_mode 'linear' (one linear layer) is supported, "
                         f"got size={config.get('size') if isinstance(config, dict) else None!r}, "
                         f"pooling_mode={config.get('pooling_mode') if isinstance(config, dict) else None!r}")
    if not isinstance(state, dict) or set(state) != PROJECTION_KEYS:
        raise UsageError(f"{name}: refused, expected state_dict keys {sorted(PROJECTION_KEYS)}, "
                         f"got {sorted(state) if isinstance(state, dict) else type(state).__name__}")
    weight, bias = state["projection.weight"], state["projection.bias"]
    shape_ok = (isinstance(weight, torch.Tensor) and isinstance(bias, torch.Tensor) and weight.dim() == 2
                and weight.is_floating_point() and tuple(bias.shape) == (weight.shape[0],)
                and tuple(weight.shape) == (config.get("output_dim"), config.get("input_dim")))
    if not shape_ok:
        raise UsageError(f"{name}: refused, projection shapes do not match its config "
                         f"(input_dim={config.get('input_dim')}, output_dim={config.get('output_dim')})")
    return weight.float().contiguous(), bias.float().contiguous()


def question_tokens(folder: Path, n: int) -> tuple[list[str], list[int]]:
    """Names and ids of `<question1>..<questionN>` in the checkpoint's tokenizer."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise UsageError(f"not a reference checkpoint: no loadable tokenizer in {folder} ({exc})") from exc
    added = {t: i for t, i in tokenizer.get_added_vocab().items() if re.fullmatch(r"<question\d+>", t)}
    names = [f"<question{i}>" for i in range(1, n + 1)]
    # The reference appends every <questionK> and reads the last n states, so the set must be exactly 1..n.
    if sorted(added) != sorted(names):
        raise UsageError(f"the tokenizer's special tokens {sorted(added) or 'none'} are not exactly "
                         f"<question1>..<question{n}> as encoding mode last_{n}_tokens requires")
    return names, [added[t] for t in names]


def read_token_rows(encoder_dir: Path, token_ids: list[int]) -> torch.Tensor:
    """The trained rows of the given token ids from a PEFT TRAINABLE_TOKENS adapter, in that order."""
    from safetensors import safe_open

    config_path, weights_path = encoder_dir / "adapter_config.json", encoder_dir / "adapter_model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise UsageError(f"not a reference checkpoint: {encoder_dir} lacks adapter_config.json or adapter_model.safetensors")
    config = json.loads(config_path.read_text())
    if config.get("peft_type") != "TRAINABLE_TOKENS":
        raise UsageError(f"encoder adapter is peft_type {config.get('peft_type')!r}: only TRAINABLE_TOKENS can be imported "
                         "(genretrieve keeps the backbone frozen and shared, so a LoRA-tuned backbone has no equivalent)")
    if config.get("target_modules") not in (None, "embed_tokens", ["embed_tokens"]):
        raise UsageError(f"encoder adapter targets {config.get('target_modules')!r}, not the input embeddings (embed_tokens)")
    indices = list(config.get("token_indices") or [])
    missing = [i for i in token_ids if i not in indices]
    if missing:
        raise UsageError(f"encoder adapter does not train the <questionN> token ids {missing} (it trains {indices})")
    with safe_open(weights_path, framework="pt") as handle:
        # PEFT stores the full new rows (not a difference) under ...embed_tokens.trainable_tokens_delta;
        # the same file may also hold the whole resized embedding matrix, which is never read.
        keys = [k for k in handle.keys() if k.endswith("trainable_tokens_delta") or ".trainable_tokens_delta." in k]
        if len(keys) != 1:
            raise UsageError(f"expected one trainable_tokens_delta tensor in {weights_path.name}, found {keys}")
        rows = handle.get_tensor(keys[0])
    if rows.dim() != 2 or rows.shape[0] != len(indices):
        raise UsageError(f"{keys[0]} has shape {tuple(rows.shape)}, expected ({len(indices)}, hidden_size)")
    return rows[[indices.index(i) for i in token_ids]].float().contiguous()


def read_reference(folder: Path) -> ReferenceCheckpoint:
    """Read and check every file of a reference checkpoint folder (no model is loaded)."""
    folder = Path(folder)
    run_config = read_run_config(folder / "run_config.yml")
    if not run_config.get("model_name_or_path"):
        raise UsageError("run_config.yml names no model_name_or_path (the base model)")
    mode_file = folder / "encoder_decoder_config.json"
    saved = json.loads(mode_file.read_text()) if mode_file.is_file() else {}
    # the reference falls back the same way when encoder_decoder_config.json is absent
    encoding_mode = saved.get("encoding_mode") or run_config.get("encoding_mode") or "last_10_tokens"
    match = re.fullmatch(r"last_(\d+)_tokens", encoding_mode)
    if not match:
        raise UsageError(f"encoding_mode {encoding_mode!r} is not supported (only last_N_tokens)")
    names, ids = question_tokens(folder, int(match.group(1)))
    tokens = read_token_rows(folder / "encoder", ids)
    recon = read_projection(folder / "reconstruction_mlp")
    align = read_projection(folder / "alignment_mlp")
    d = tokens.shape[1]
    if recon[0].shape != (d, d) or align[0].shape[1] != d:
        raise UsageError(f"shapes disagree: token rows d={d}, reconstruction_mlp {tuple(recon[0].shape)}, "
                         f"alignment_mlp {tuple(align[0].shape)}")
    return ReferenceCheckpoint(
        folder, run_config["model_name_or_path"], run_config.get("torch_dtype"), encoding_mode,
        bool(saved.get("save_decoder", False)), names, tokens, recon, align,
        hashlib.sha256((folder / "alignment_mlp").read_bytes()).hexdigest())


def import_reference(spec: str, out_dir: Path) -> dict:
    """Write a genretrieve adapter for a reference checkpoint (folder or hub id); returns its card."""
    from .backbone import load_backbone
    from .load import quiet_transformers

    quiet_transformers()
    ref = read_reference(fetch_checkpoint(spec))
    # Only to fingerprint it: the fingerprint rounds to bf16, so loading in bf16 on the CPU gives the
    # same value as the fp32/bf16 GPU load that uses the adapter, at half the memory.
    backbone = load_backbone(ref.base_model, torch.device("cpu"), torch.bfloat16)
    if backbone.hidden_size != ref.tokens.shape[1]:
        raise IncompatibleArtifact(f"the checkpoint's rows have d={ref.tokens.shape[1]} but {ref.base_model} has "
                                   f"hidden_size {backbone.hidden_size}")
    adapter = GenAdapter(ref.tokens.shape[1], ref.align[0].shape[0], ref.tokens.shape[0])
    with torch.no_grad():
        adapter.tokens.copy_(ref.tokens)
        adapter.recon.weight.copy_(ref.recon[0])
        adapter.recon.bias.copy_(ref.recon[1])
        adapter.align.weight.copy_(ref.align[0])
        adapter.align.bias.copy_(ref.align[1])
    training = {"source": "llm2vec-gen reference checkpoint", "checkpoint": spec, "encoding_mode": ref.encoding_mode,
                "torch_dtype": ref.torch_dtype, "save_decoder": ref.save_decoder}
    card = make_card(adapter, backbone.model_id, backbone.fingerprint, REFERENCE_TEACHER_ID,
                     f"reference:{ref.align_sha256[:16]}", dict(REFERENCE_INSTRUCTIONS), training)
    card["token_strings"] = ref.token_strings
    # The embeddings live in the paper's teacher space (an LLM2Vec model), not the loaded teacher's.
    card["teacher_space"] = "reference"
    save_adapter(adapter, card, Path(out_dir))
    return {**card, "fingerprint": adapter.fingerprint(), "path": str(out_dir)}
