"""The teacher alone, standing in for the encoder on every path that never runs the LLM.

Teacher- and keyword-mode search and teacher-encoded indexing need the teacher's vectors and,
for indexing, the backbone's tokenizer (chunk lengths are counted in its tokens, so chunks stay
the same whichever path made them), read from its tokenizer.json without transformers. Loading
the 135 M-parameter backbone for them cost seconds and hundreds of MB for nothing. This object offers what those paths read from `GenEncoder`
(`teacher`, `backbone.tokenizer`, `dim`, `teacher_space_matches`, a `card` without an adapter)
and nothing that needs the LLM: asking it for gen vectors is a programming error.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

from .fast_tokenizer import FastTokenizer
from .teacher import Teacher


class ChunkTokenizer:
    """The backbone's tokenizer and display id, loaded on first use; its weights never are."""

    def __init__(self, spec: str):
        self.spec = spec

    @cached_property
    def _resolved(self) -> tuple[str, str]:
        from .assets import resolve_model

        return resolve_model(self.spec)

    @property
    def model_id(self) -> str:
        return self._resolved[1]

    @cached_property
    def tokenizer(self):
        folder = Path(self._resolved[0])
        if (folder / "tokenizer.json").is_file():  # 0.15 s, where transformers' AutoTokenizer takes ~5 s cold
            return FastTokenizer(folder / "tokenizer.json")
        from transformers import AutoTokenizer

        from .assets import hub_error

        try:
            return AutoTokenizer.from_pretrained(self._resolved[0])
        except OSError as exc:
            raise hub_error(self.spec, exc) from exc


class TeacherEncoder:
    def __init__(self, teacher: Teacher, backbone_spec: str, teacher_space_matches: bool = True):
        self.teacher = teacher
        self.backbone = ChunkTokenizer(backbone_spec)
        self.teacher_space_matches = teacher_space_matches
        self.card = {"path": None, "trained": False}  # no adapter: no safety probe, no gen vectors

    @property
    def dim(self) -> int:
        return self.teacher.dim

    def encode_queries(self, texts, instruction=None):
        raise RuntimeError("the teacher-only encoder has no LLM: load the full encoder (load_encoder) for gen vectors")

    encode_documents = soft_prompts = encode_queries
