"""Load the frozen decoder LLM and the tokenizer, and fingerprint the weights.

The backbone is loaded as a causal LM so that decoding and the reconstruction loss can use its
LM head, but encoding only runs `base_model` (hidden states, no 49k-way logits). All its
parameters are frozen here, once, so no caller can train them by accident.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from typing import TYPE_CHECKING

import torch

from .assets import hub_error, resolve_model

if TYPE_CHECKING:  # transformers' model code costs ~2 s to import: only load_backbone pays it (see bert.py)
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def weights_fingerprint(model) -> str:
    """Identify a model by its config and a strided sample of its input embeddings.

    The sample is rounded to bf16 first so that the same weights loaded in fp32 or bf16 give
    the same fingerprint, while different weights (another model, another seed) do not.
    """
    config = model.config.to_dict()
    keep = {k: config.get(k) for k in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size",
                                       "num_attention_heads", "intermediate_size")}
    weight = model.get_input_embeddings().weight.detach()
    sample = weight[1::max(1, weight.shape[0] // 256), ::7].to("cpu", torch.bfloat16).float()
    digest = hashlib.sha256(json.dumps(keep, sort_keys=True).encode())
    digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class Backbone:
    model: PreTrainedModel  # causal LM; `.base_model` gives hidden states
    tokenizer: PreTrainedTokenizerBase
    model_id: str
    fingerprint: str

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype


def freeze(model: PreTrainedModel, model_id: str, tokenizer: PreTrainedTokenizerBase) -> Backbone:
    model.eval()
    model.requires_grad_(False)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return Backbone(model, tokenizer, model_id, weights_fingerprint(model))


def load_backbone(spec: str, device: torch.device, dtype: torch.dtype) -> Backbone:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, model_id = resolve_model(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except OSError as exc:
        raise hub_error(spec, exc) from exc
    return freeze(model.to(device), model_id, tokenizer)
