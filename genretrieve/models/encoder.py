"""The generative encoder: `instruction text <gen_1>..<gen_10>` -> frozen LLM -> adapter -> unit vector.

One forward pass of the base model (no LM head, no generation). Sequences are left-padded so the
10 adapter tokens are always the last 10 positions, with position ids counted from the first
real token so a padded batch encodes like each text alone. Truncation cuts the text, never the
10 tokens. Inputs are sorted by length into batches and the original order is restored.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .adapter import GenAdapter
from .backbone import Backbone
from .batching import length_sorted_batches
from .teacher import Teacher


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

    @property
    def dim(self) -> int:
        return self.adapter.align.out_features

    @property
    def teacher_space_matches(self) -> bool:
        """False for an adapter imported from the paper: it embeds into the paper's teacher space."""
        return self.card.get("teacher_space") != "reference"

    # --- tokens -> hidden states -------------------------------------------------------------
    def token_ids(self, texts: list[str], instruction: str) -> list[list[int]]:
        """Ids of `instruction + " " + text`, truncated so that the 10 adapter tokens still fit."""
        prefix = [f"{instruction} {text}" if instruction else text for text in texts]
        budget = self.max_length - self.adapter.n_tokens
        return self.backbone.tokenizer(prefix, truncation=True, max_length=budget)["input_ids"]

    def hidden_states(self, ids: list[list[int]]) -> torch.Tensor:
        """Last-layer states (after the final norm) at the 10 adapter positions: (B, n, d) float32."""
        n = self.adapter.n_tokens
        width = max(len(row) for row in ids) + n
        device = self.backbone.device
        input_ids = torch.full((len(ids), width), self.backbone.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, seq in enumerate(ids):
            input_ids[row, width - n - len(seq):width - n] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - n - len(seq):] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        embeds = self.backbone.model.get_input_embeddings()(input_ids)
        tokens = self.adapter.tokens.to(embeds.dtype).unsqueeze(0).expand(len(ids), -1, -1)
        embeds = torch.cat([embeds[:, :-n], tokens], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.backbone.model.base_model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions)
        return out.last_hidden_state[:, -n:].float()

    # --- public encode API -------------------------------------------------------------------
    def _encode(self, texts: list[str], instruction: str, head) -> np.ndarray:
        ids = self.token_ids(list(texts), instruction)
        out = None
        with torch.inference_mode():
            for idx in length_sorted_batches([len(row) for row in ids], self.batch_size):
                result = head(self.hidden_states([ids[i] for i in idx])).cpu().numpy()
                if out is None:
                    out = np.zeros((len(ids),) + result.shape[1:], dtype=np.float32)
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

    def soft_prompts(self, texts: list[str], instruction: str | None = None) -> np.ndarray:
        """P for each query, (n, 10, d): what `explain` decodes back into text."""
        instruction = self.query_instruction if instruction is None else instruction
        return self._encode(texts, instruction, self.adapter.soft_prompts)
