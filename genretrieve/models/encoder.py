"""The generative encoder: framed text + <gen_1>..<gen_10> -> frozen LLM -> adapter -> unit vector.

One forward pass of the base model (no LM head, no generation). Two framings, named in the
adapter card so an adapter encodes exactly as it was trained (`framing.py`):
- chat: the text is the user turn of the backbone's chat template, and the 10 adapter tokens
  stand where the assistant header would be, the place where the LLM is about to answer;
- plain: `instruction + " " + text` (the paper's format, and imported reference adapters).
A sequence is [shared prefix][padding][text][10 tokens]: padding sits between the prefix and the
text, so the prefix's keys and values are computed once per process and reused for every batch,
and the 10 tokens are always the last positions. Position ids count real tokens only, so a
padded batch encodes like each text alone. Truncation cuts the text, never the tokens.

The input positions never attend to the adapter tokens, so their keys and values do not depend
on the adapter: `context()` computes them without gradients and `token_states()` runs only the
10 positions, which is what gradient training backpropagates through.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import DynamicCache

from .adapter import GenAdapter
from .backbone import Backbone
from .batching import length_sorted_batches
from .framing import Framing
from .teacher import Teacher


@dataclass
class Context:
    """Keys/values of [prefix][padding][text] for a batch, and where the 10 tokens go (use once: the
    forward over the tokens appends to the cache)."""
    cache: DynamicCache
    mask: torch.Tensor  # (B, context + n): 1 on real positions
    positions: torch.Tensor  # (B, n): position ids of the 10 adapter tokens


class GenEncoder:
    def __init__(self, backbone: Backbone, teacher: Teacher, adapter: GenAdapter, card: dict,
                 max_length: int = 512, batch_size: int = 32):
        self.backbone = backbone
        self.teacher = teacher
        self.adapter = adapter.to(backbone.device)
        self.card = card
        self.max_length = max_length
        self.batch_size = batch_size
        self.query_instruction = card["instructions"]["query"]
        self.document_instruction = card["instructions"]["document"]
        self.framing = Framing.from_card(card)
        self.prefix_cache = True  # off only to check the cached path against the full forward
        self._cache_name: str | None = None
        self._prefix_kv: dict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = {}

    @property
    def dim(self) -> int:
        return self.adapter.align.out_features

    @property
    def teacher_space_matches(self) -> bool:
        """False for an adapter imported from the paper: it embeds into the paper's teacher space."""
        return self.card.get("teacher_space") != "reference"

    # --- text -> token ids -------------------------------------------------------------------
    def token_ids(self, texts: list[str], instruction: str) -> tuple[list[int], list[list[int]]]:
        """(prefix shared by every text, ids of each text), truncated so that the 10 tokens still fit."""
        return self.framing.token_ids(self.backbone.tokenizer, list(texts), instruction,
                                      self.max_length - self.adapter.n_tokens, self.adapter.n_tokens)

    # --- token ids -> hidden states ------------------------------------------------------------
    def _prefix_keys_values(self, prefix: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        key = tuple(prefix)
        if key not in self._prefix_kv:
            # plain tensors (not inference tensors), so training can attend to them under autograd
            with torch.inference_mode(False), torch.no_grad():
                ids = torch.tensor([prefix], dtype=torch.long, device=self.backbone.device)
                out = self.backbone.model.base_model(input_ids=ids, use_cache=True)
                self._prefix_kv[key] = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        return self._prefix_kv[key]

    def _cache_arg(self, cache: DynamicCache) -> dict:
        """transformers 5 renames `past_key_values` to `cache` (the old name warns, then goes)."""
        if self._cache_name is None:
            params = inspect.signature(self.backbone.model.base_model.forward).parameters
            self._cache_name = "cache" if "cache" in params else "past_key_values"
        return {self._cache_name: cache}

    def _layout(self, prefix: list[int], rows: list[list[int]]):
        """Ids of [padding][text] per row, the full attention mask and the position ids of those ids."""
        p, width = len(prefix), max(len(row) for row in rows)
        ids = torch.full((len(rows), width), self.backbone.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), p + width + self.adapter.n_tokens), dtype=torch.long)
        mask[:, :p] = 1
        for i, row in enumerate(rows):
            if row:
                ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[i, p + width - len(row):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        device = self.backbone.device
        return ids.to(device), mask.to(device), positions.to(device)

    def _prefix_cache_for(self, prefix: list[int], batch: int) -> DynamicCache:
        return DynamicCache([(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1))
                             for k, v in self._prefix_keys_values(prefix)])

    def _forward(self, prefix: list[int], ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor,
                 cached: bool, tokens: torch.Tensor | None = None, **kwargs):
        """One base-model call over [prefix][ids][tokens]; the prefix comes from its cache when `cached`."""
        start = 0
        if prefix and cached:
            kwargs.update(self._cache_arg(self._prefix_cache_for(prefix, len(ids))))
            start = len(prefix)
        elif prefix:
            ids = torch.cat([torch.tensor([prefix] * len(ids), dtype=torch.long, device=ids.device), ids], 1)
        embeds = self.backbone.model.get_input_embeddings()(ids)
        if tokens is not None:
            embeds = torch.cat([embeds, tokens.to(embeds.dtype).unsqueeze(0).expand(len(ids), -1, -1)], 1)
        end = start + embeds.shape[1]
        return self.backbone.model.base_model(inputs_embeds=embeds, attention_mask=mask[:, :end],
                                              position_ids=positions[:, start:end], **kwargs)

    def context(self, prefix: list[int], rows: list[list[int]], use_prefix_cache: bool | None = None) -> Context:
        """Keys and values of everything before the adapter tokens, computed without gradients."""
        ids, mask, positions = self._layout(prefix, rows)
        cached = self.prefix_cache if use_prefix_cache is None else use_prefix_cache
        with torch.no_grad():
            out = self._forward(prefix, ids, mask, positions, cached, use_cache=True)
        start = len(prefix) + ids.shape[1]
        return Context(out.past_key_values, mask, positions[:, start:start + self.adapter.n_tokens])

    def token_states(self, context: Context) -> torch.Tensor:
        """Last-layer states (after the final norm) at the 10 adapter positions: (B, n, d) float32."""
        batch = context.mask.shape[0]
        dtype = self.backbone.model.get_input_embeddings().weight.dtype
        tokens = self.adapter.tokens.to(dtype).unsqueeze(0).expand(batch, -1, -1)
        out = self.backbone.model.base_model(inputs_embeds=tokens, attention_mask=context.mask,
                                             position_ids=context.positions, **self._cache_arg(context.cache))
        return out.last_hidden_state.float()

    def full_states(self, prefix: list[int], rows: list[list[int]], use_prefix_cache: bool = False) -> torch.Tensor:
        """The states from one forward over text + tokens (the prefix from its cache, or recomputed)."""
        ids, mask, positions = self._layout(prefix, rows)
        out = self._forward(prefix, ids, mask, positions, use_prefix_cache, tokens=self.adapter.tokens)
        return out.last_hidden_state[:, -self.adapter.n_tokens:].float()

    def hidden_states(self, prefix: list[int], rows: list[list[int]]) -> torch.Tensor:
        """States at the 10 adapter positions for a batch: (B, n, d) float32. One model call: at batch 1
        a call costs about a read of all the weights, whatever the length, so encoding never splits."""
        return self.full_states(prefix, rows, use_prefix_cache=self.prefix_cache)

    # --- public encode API -------------------------------------------------------------------
    def _encode(self, texts: list[str], instruction: str, head) -> np.ndarray:
        prefix, rows = self.token_ids(list(texts), instruction)
        out = None
        with torch.inference_mode():
            for idx in length_sorted_batches([len(row) for row in rows], self.batch_size):
                result = head(self.hidden_states(prefix, [rows[i] for i in idx])).cpu().numpy()
                if out is None:
                    out = np.zeros((len(rows),) + result.shape[1:], dtype=np.float32)
                out[idx] = result
        return out if out is not None else np.zeros((0, self.dim), dtype=np.float32)

    def encode_queries(self, texts: list[str], instruction: str | None = None) -> np.ndarray:
        """Response embeddings of queries: (n, d_T) float32, unit rows."""
        instruction = self.query_instruction if instruction is None else instruction
        return self._encode(texts, instruction, lambda h: F.normalize(self.adapter(h), dim=-1))

    def encode_queries_with_states(self, texts: list[str], instruction: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(response embeddings (n, d_T), mean of the 10 last-layer states (n, d)) from one forward pass:
        the safety filter reads the state at which the LLM is about to answer without a second pass."""
        instruction = self.query_instruction if instruction is None else instruction
        both = self._encode(texts, instruction,
                            lambda h: torch.cat([F.normalize(self.adapter(h), dim=-1), h.mean(dim=1)], dim=-1))
        return both[:, :self.dim], both[:, self.dim:]

    def encode_documents(self, texts: list[str], instruction: str | None = None) -> np.ndarray:
        """Documents through the same encoder with the document instruction (the paper's choice)."""
        instruction = self.document_instruction if instruction is None else instruction
        return self._encode(texts, instruction, lambda h: F.normalize(self.adapter(h), dim=-1))

    def mean_states(self, texts: list[str], instruction: str | None = None) -> np.ndarray:
        """Mean over the 10 positions of the last-layer states, (n, d): the readout's input."""
        instruction = self.query_instruction if instruction is None else instruction
        return self._encode(texts, instruction, lambda h: h.mean(dim=1))

    def soft_prompts(self, texts: list[str], instruction: str | None = None) -> np.ndarray:
        """P for each query, (n, 10, d): what `explain` decodes back into text."""
        instruction = self.query_instruction if instruction is None else instruction
        return self._encode(texts, instruction, self.adapter.soft_prompts)
