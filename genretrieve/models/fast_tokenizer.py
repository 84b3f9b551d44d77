"""A tokenizer.json through `tokenizers`, called as transformers' fast tokenizers are (both run the
same Rust tokenizer), without importing transformers, which costs seconds on a cold start.

It answers only the calls genretrieve makes: ids (and character offsets for chunking), optional
truncation and padding, lists or torch tensors. Transformers' defaults hold: no padding, no
truncation, lists unless `return_tensors="pt"`.
"""
from __future__ import annotations

from pathlib import Path


class Batch(dict):
    """Columns by name, like transformers' BatchEncoding; `.to(device)` for tensors."""

    def to(self, device) -> "Batch":
        return Batch({k: v.to(device) for k, v in self.items()})


class FastTokenizer:
    def __init__(self, path: Path):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(path))
        padding = self.tokenizer.padding or {}
        self.pad_id, self.pad_token = padding.get("pad_id", 0), padding.get("pad_token", "[PAD]")
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()

    def __call__(self, texts, padding: bool = False, truncation: bool = False, max_length: int | None = None,
                 return_tensors: str | None = None, add_special_tokens: bool = True,
                 return_offsets_mapping: bool = False, verbose=None) -> Batch:
        tok = self.tokenizer
        tok.enable_truncation(max_length) if truncation and max_length else tok.no_truncation()
        tok.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token) if padding else tok.no_padding()
        single = isinstance(texts, str)
        rows = tok.encode_batch([texts] if single else list(texts), add_special_tokens=add_special_tokens)
        columns = {"input_ids": [r.ids for r in rows], "attention_mask": [r.attention_mask for r in rows],
                   "token_type_ids": [r.type_ids for r in rows]}
        if return_offsets_mapping:
            columns["offset_mapping"] = [r.offsets for r in rows]
        if return_tensors == "pt":
            import torch

            return Batch({k: torch.tensor(v, dtype=torch.long) for k, v in columns.items() if k != "offset_mapping"})
        return Batch({k: v[0] for k, v in columns.items()} if single else columns)
