"""A BERT encoder forward in plain torch, for teachers like MiniLM (the tokenizer: fast_tokenizer.py).

Importing transformers' model code costs ~2 s of CPU (its modeling_utils pulls in torch.distributed,
sympy and dynamo), more than loading and running MiniLM; teacher-mode search would pay it on every
cold start. A BERT encoder is twelve lines of torch, so BERT-family teachers (the default) load from
their safetensors here, with transformers' module names so the state dict maps
one to one; any other teacher goes through transformers (teacher.py picks). Concessions: absolute
positions and GELU only (`supports` says which folders qualify), inference only, no pooler.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def supports(folder: Path) -> bool:
    """True for a local BERT folder this module reproduces: safetensors weights, a tokenizer.json."""
    folder = Path(folder)
    if not all((folder / name).is_file() for name in ("config.json", "model.safetensors", "tokenizer.json")):
        return False
    config = json.loads((folder / "config.json").read_text())
    return (config.get("model_type") == "bert" and config.get("hidden_act", "gelu") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute" and not config.get("is_decoder"))


class Config(dict):
    """config.json as read; the attributes transformers' configs offer that the teacher and the fingerprint read."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_dict(self) -> dict:
        return dict(self)


class Output:
    def __init__(self, last_hidden_state: torch.Tensor):
        self.last_hidden_state = last_hidden_state


class Layer(nn.Module):
    def __init__(self, d: int, ff: int, heads: int, eps: float):
        super().__init__()
        self.heads = heads
        self.attention = nn.Module()
        self.attention.self = nn.Module()
        self.attention.self.query, self.attention.self.key, self.attention.self.value = (nn.Linear(d, d) for _ in range(3))
        self.attention.output = nn.Module()
        self.attention.output.dense, self.attention.output.LayerNorm = nn.Linear(d, d), nn.LayerNorm(d, eps=eps)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(d, ff)
        self.output = nn.Module()
        self.output.dense, self.output.LayerNorm = nn.Linear(ff, d), nn.LayerNorm(d, eps=eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        a = self.attention.self
        q, k, v = (proj(x).view(b, n, self.heads, d // self.heads).transpose(1, 2) for proj in (a.query, a.key, a.value))
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2).reshape(b, n, d)
        x = self.attention.output.LayerNorm(x + self.attention.output.dense(context))
        return self.output.LayerNorm(x + self.output.dense(F.gelu(self.intermediate.dense(x))))


class Bert(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        d, eps = config.hidden_size, config.get("layer_norm_eps", 1e-12)
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(config.vocab_size, d)
        self.embeddings.position_embeddings = nn.Embedding(config.max_position_embeddings, d)
        self.embeddings.token_type_embeddings = nn.Embedding(config.get("type_vocab_size", 2), d)
        self.embeddings.LayerNorm = nn.LayerNorm(d, eps=eps)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(Layer(d, config.intermediate_size, config.num_attention_heads, eps)
                                           for _ in range(config.num_hidden_layers))

    @property
    def device(self) -> torch.device:
        return self.embeddings.word_embeddings.weight.device

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids=None) -> Output:
        e = self.embeddings
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        x = e.LayerNorm(e.word_embeddings(input_ids) + e.position_embeddings(positions) + e.token_type_embeddings(types))
        # additive mask over keys: padding gets the dtype's minimum, as transformers does
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.encoder.layer:
            x = layer(x, bias)
        return Output(x)


def load_bert(folder: Path, dtype: torch.dtype) -> Bert:
    from safetensors.torch import load_file

    folder = Path(folder)
    model = Bert(Config(json.loads((folder / "config.json").read_text())))
    state = {k.removeprefix("bert."): v for k, v in load_file(folder / "model.safetensors").items()}
    missing, _ = model.load_state_dict(state, strict=False)  # the pooler and position_ids are not used
    if missing:
        raise ValueError(f"{folder}: weights missing for {', '.join(missing[:5])}")
    return model.to(dtype)
