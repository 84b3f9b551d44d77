"""The embeddings an encoder offers by name, for callers outside search (the server, the MTEB wrapper).

`gen`: a text's response embedding (the method, query instruction); `teacher`: the teacher's plain
embedding; `gen-document`: the method with the document instruction. All are unit vectors in the
teacher's space, so any two of them can be compared by cosine.
"""
from __future__ import annotations

import numpy as np

from .errors import UsageError

EMBEDDING_MODELS = ("gen", "teacher", "gen-document")


def embed(encoder, model: str, texts: list[str]) -> np.ndarray:
    """(n, dim) float32 unit rows of `texts` under the named embedding."""
    if model == "gen":
        return encoder.encode_queries(texts)
    if model == "teacher":
        return encoder.teacher.encode(texts)
    if model == "gen-document":
        return encoder.encode_documents(texts)
    raise UsageError(f"model must be one of {', '.join(EMBEDDING_MODELS)}, not {model!r}")


def token_counts(encoder, model: str, texts: list[str]) -> list[int]:
    """Tokens of each text for the model that reads it (the teacher's tokenizer for `teacher`)."""
    tokenizer = getattr(encoder.teacher, "tokenizer", None) if model == "teacher" else None
    tokenizer = tokenizer or encoder.backbone.tokenizer
    ids = tokenizer(list(texts), add_special_tokens=False, padding=False, truncation=False, return_tensors=None)["input_ids"]
    return [len(row) for row in ids]
