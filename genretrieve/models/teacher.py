"""The teacher: a sentence embedder (default all-MiniLM-L6-v2) through plain transformers.

Mean pooling over real tokens then L2 normalisation reproduces sentence-transformers' output
for MiniLM without depending on that library (CLS pooling for teachers that use it). Inputs
are sorted by length before batching, which matters on CPU where padding is pure waste.
BERT-family teachers (the default) load through bert.py, without importing transformers' model
code (~2 s of every cold start); others through transformers' AutoModel.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .assets import hub_error, resolve_model
from .backbone import weights_fingerprint
from .batching import length_sorted_batches


class Teacher:
    def __init__(self, model, tokenizer, model_id: str, pooling: str = "mean", max_length: int = 256):
        if pooling not in ("mean", "cls"):
            raise ValueError(f"teacher pooling must be mean or cls, not {pooling!r}")
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.pooling = pooling
        self.max_length = max_length
        self.fingerprint = weights_fingerprint(model)

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        # 16: the fastest of 8/16/32/64 for ~200-token documents in `bench speed` (README, Speed)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        lengths = [len(t) for t in texts]
        for idx in length_sorted_batches(lengths, batch_size):
            batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt").to(self.model.device)
            hidden = self.model(**batch).last_hidden_state.float()
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = batch["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
        return out


def load_teacher(spec: str, device: torch.device, dtype: torch.dtype, pooling: str = "mean") -> Teacher:
    from . import bert
    from .fast_tokenizer import FastTokenizer

    path, model_id = resolve_model(spec)
    if bert.supports(path):
        tokenizer, model = FastTokenizer(Path(path) / "tokenizer.json"), bert.load_bert(path, dtype)
    else:
        from transformers import AutoModel, AutoTokenizer

        from .load import quiet_transformers

        quiet_transformers()
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModel.from_pretrained(path, dtype=dtype)
        except OSError as exc:
            raise hub_error(spec, exc) from exc
    max_length = 256
    st_config = Path(path) / "sentence_bert_config.json"
    if st_config.exists():
        max_length = json.loads(st_config.read_text()).get("max_seq_length", max_length)
    return Teacher(model.to(device), tokenizer, model_id, pooling, max_length)
