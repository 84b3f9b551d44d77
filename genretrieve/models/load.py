"""Assemble an encoder from a config: device and dtype, backbone, teacher, and the adapter.

`load_teacher_encoder` loads the teacher alone, for the paths that never run the LLM (teacher and
keyword search, teacher-encoded indexing): they start without importing or loading the backbone.

The adapter named "default" is the trained one shipped in `genretrieve/data/adapters/` whose card
matches the loaded backbone and teacher; when none matches, a fresh (untrained) adapter is
used and its card says `"trained": false`, which `genretrieve info` shows plainly.
"""
from __future__ import annotations

from pathlib import Path

from ..config import Config, load_config
from ..errors import UsageError
from .adapter import N_TOKENS, fresh_adapter, load_adapter, make_card, read_card
from .backbone import load_backbone
from .device import pick_device, pick_dtype
from .encoder import GenEncoder
from .framing import Framing
from .quantize import check_quantize, quantize_linear_int8
from .teacher import load_teacher
from .teacher_only import TeacherEncoder

SHIPPED_ADAPTERS = Path(__file__).resolve().parent.parent / "data" / "adapters"


def shipped_adapter_for(backbone_fp: str, teacher_fp: str) -> Path | None:
    for card_path in sorted(SHIPPED_ADAPTERS.glob("*/adapter.json")):
        card = read_card(card_path.parent)
        if card["backbone"]["fingerprint"] == backbone_fp and card["teacher"]["fingerprint"] == teacher_fp:
            return card_path.parent
    return None


def quiet_transformers() -> None:
    """Our own progress goes to stderr through rich; transformers' bars and warnings would duplicate it."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def load_encoder(config: Config | str | Path | None = None) -> GenEncoder:
    config = config if isinstance(config, Config) else load_config(config)
    quiet_transformers()
    m = config.model
    device = pick_device(m.device)
    dtype = model_dtype(m, device)
    backbone = load_backbone(m.backbone, device, dtype)
    teacher = load_teacher(m.teacher, device, dtype, m.teacher_pooling)
    if m.quantize == "int8":  # the base model only: the LM head (tied to the embeddings) serves decoding
        quantize_linear_int8(backbone.model.base_model)
        quantize_linear_int8(teacher.model)
    return build_encoder(backbone, teacher, config)


def model_dtype(m, device):
    """The dtype to load in: int8 quantisation starts from fp32 weights."""
    check_quantize(m.quantize, m.dtype, device)
    return pick_dtype("float32" if m.quantize == "int8" else m.dtype, device)


def load_teacher_encoder(config: Config | str | Path | None = None) -> TeacherEncoder:
    """The teacher without the LLM (models/teacher_only.py); same device, dtype and checks as load_encoder."""
    config = config if isinstance(config, Config) else load_config(config)
    m = config.model
    device = pick_device(m.device)
    teacher = load_teacher(m.teacher, device, model_dtype(m, device), m.teacher_pooling)
    if m.quantize == "int8":
        quantize_linear_int8(teacher.model)
    return TeacherEncoder(teacher, m.backbone, adapter_teacher_space(m.adapter) != "reference")


def adapter_teacher_space(adapter: str) -> str | None:
    """An imported paper adapter embeds into the paper's teacher space ("reference"); read from its card alone."""
    if adapter in ("default", "fresh"):
        return None  # shipped and fresh adapters embed into the loaded teacher's space
    if not Path(adapter).is_dir():
        raise UsageError(f"adapter folder {adapter} does not exist")
    return read_card(Path(adapter)).get("teacher_space")


def build_encoder(backbone, teacher, config: Config) -> GenEncoder:
    """The encoder for already-loaded models (tests build tiny models and come in here)."""
    m = config.model
    folder = None
    if m.adapter == "default":
        folder = shipped_adapter_for(backbone.fingerprint, teacher.fingerprint)
    elif m.adapter != "fresh":
        folder = Path(m.adapter)
        if not folder.is_dir():
            raise UsageError(f"adapter folder {folder} does not exist")
    if folder is not None:
        # An adapter imported from the paper embeds into the paper's teacher space (an LLM2Vec model we
        # do not load), so it goes with any loaded teacher; index and search refuse to mix the spaces.
        stored = read_card(folder)
        teacher_fp = stored["teacher"]["fingerprint"] if stored.get("teacher_space") == "reference" else teacher.fingerprint
        adapter, card = load_adapter(folder, backbone.fingerprint, teacher_fp)
        card["path"] = str(folder)
    else:
        framing = Framing.choose(backbone.tokenizer, m.token_init, N_TOKENS)
        init_ids = framing.init_token_ids(backbone.tokenizer, N_TOKENS) if framing.token_text else None
        adapter = fresh_adapter(backbone.model.get_input_embeddings().weight, teacher.dim, init_ids=init_ids)
        instructions = {"query": m.query_instruction, "document": m.document_instruction}
        card = make_card(adapter, backbone.model_id, backbone.fingerprint, teacher.model_id, teacher.fingerprint,
                         instructions, training=None, framing=framing.to_card())
        card["path"] = None
    return GenEncoder(backbone, teacher, adapter, card, m.max_length, m.batch_size)


def describe(encoder: GenEncoder) -> dict:
    """What `genretrieve info` prints: versions, device, models, adapter, cache."""
    import faiss
    import torch
    import transformers

    from .. import __version__
    from .assets import home

    card = encoder.card
    return {
        "versions": {"genretrieve": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
                     "faiss": faiss.__version__},
        "device": str(encoder.backbone.device),
        "dtype": str(encoder.backbone.dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "backbone": {"id": encoder.backbone.model_id, "fingerprint": encoder.backbone.fingerprint,
                     "hidden_size": encoder.backbone.hidden_size},
        "teacher": {"id": encoder.teacher.model_id, "fingerprint": encoder.teacher.fingerprint, "dim": encoder.teacher.dim},
        "adapter": {"path": card.get("path"), "trained": card["trained"], "fingerprint": card["fingerprint"],
                    "instructions": card["instructions"]},
        "cache": str(home()),
    }
