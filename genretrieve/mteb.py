"""genretrieve as an MTEB model: the mteb v2 encoder protocol and a ModelMeta (`pip install genretrieve[mteb]`).

MTEB tells queries from documents by `prompt_type`; queries get the query embedding and
documents the document embedding, each one of genretrieve's named embeddings (embeddings.py).
The default pair is the method as `search --mode gen` runs it: response embeddings of queries
against teacher-encoded documents. Texts with no prompt type (STS, classification) get the
query embedding, on both sides. The encoder is loaded once, here or by the caller.

    import mteb
    from genretrieve.mteb import GenRetrieveModel
    results = mteb.evaluate(GenRetrieveModel(), mteb.get_tasks(tasks=["SciFact"]))
"""
from __future__ import annotations

from typing import Any

import numpy as np
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta
from mteb.types import PromptType

from .embeddings import EMBEDDING_MODELS, embed
from .errors import UsageError


def model_meta(encoder, query_model: str = "gen", document_model: str = "teacher") -> ModelMeta:
    """What MTEB records about the model: the backbone + teacher pair, the adapter as the revision."""
    def short(model_id: str) -> str:
        return model_id.replace("packaged:", "").rstrip("/").split("/")[-1]

    def parameters(part) -> int | None:
        model = getattr(part, "model", None)
        return sum(p.numel() for p in model.parameters()) if model is not None else None

    counts = [parameters(encoder.backbone), parameters(encoder.teacher)]
    return ModelMeta(
        loader=GenRetrieveModel, name=f"genretrieve/{short(encoder.backbone.model_id)}+{short(encoder.teacher.model_id)}",
        revision=encoder.card["fingerprint"], release_date=None, languages=["eng-Latn"],
        n_parameters=sum(counts) if None not in counts else None, memory_usage_mb=None,
        max_tokens=getattr(encoder, "max_length", None), embed_dim=int(encoder.dim), license="apache-2.0",
        open_weights=True, public_training_code=None, public_training_data=None, framework=["PyTorch"],
        similarity_fn_name="cosine", use_instructions=True, training_datasets=set(),
        adapted_from=encoder.backbone.model_id,
        experiment_kwargs={"query_model": query_model, "document_model": document_model})


class GenRetrieveModel(AbsEncoder):
    """An mteb encoder over a genretrieve encoder (loaded from `config` unless one is given)."""

    def __init__(self, model_name: str | None = None, revision: str | None = None, *, device: str | None = None,
                 config=None, encoder=None, query_model: str = "gen", document_model: str = "teacher", **kwargs: Any):
        for name in (query_model, document_model):
            if name not in EMBEDDING_MODELS:
                raise UsageError(f"model must be one of {', '.join(EMBEDDING_MODELS)}, not {name!r}")
        if encoder is None:
            from .config import load_config
            from .models.load import load_encoder

            encoder = load_encoder(load_config(config, model__device=device))
        self.model = self.encoder = encoder
        self.query_model, self.document_model = query_model, document_model
        self.mteb_model_meta = model_meta(encoder, query_model, document_model)

    def encode(self, inputs, *, task_metadata, hf_split: str, hf_subset: str, prompt_type: PromptType | None = None,
               **kwargs: Any) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        name = self.document_model if prompt_type == PromptType.document else self.query_model
        if not texts:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return embed(self.encoder, name, texts)
