"""Configuration: dataclasses with defaults, optionally overlaid by a YAML file, then by CLI flags.

Precedence is CLI > file > defaults. A file is named by path or by a name under `configs/`
(`--config qwen3-0.6b` finds `configs/qwen3-0.6b.yaml`); `GENRETRIEVE_CONFIG` names the file when no
flag does. The resolved config is written beside every index and adapter, so each artefact says
how it was made.
"""
from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A config file or value that cannot be used (a usage error)."""


@dataclass
class ModelConfig:
    # "packaged:smollm2" / "packaged:all-minilm-l6-v2" are the offline defaults; anything else is
    # a local folder or a hub id.
    backbone: str = "packaged:smollm2"
    teacher: str = "packaged:all-minilm-l6-v2"
    teacher_pooling: str = "mean"  # mean | cls
    adapter: str = "default"  # "default" (shipped, else fresh), "fresh", or an adapter folder
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    quantize: str = "none"  # none | int8: int8 linear layers on CPU (models/quantize.py; README: the quality gate decided)
    max_length: int = 512
    batch_size: int = 32
    query_instruction: str = "Generate a passage that best answers this question:"
    document_instruction: str = "Summarize the following passage:"


@dataclass
class IndexConfig:
    chunk_tokens: int = 200
    chunk_overlap: float = 0.15
    doc_encoder: str = "teacher"  # teacher | gen  (see README: measured choice)
    kind: str = "auto"  # auto | flat | ivf | hnsw (in RAM) | ivf-sq8 | ivf-pq (on disk, see index/ondisk.py)


@dataclass
class SearchConfig:
    k: int = 10
    mode: str = "teacher"  # gen | teacher | keyword | hybrid: the measured best on the embedded defaults (README)
    hybrid_weight: float = 0.1  # w in (1 - w)·teacher + w·gen
    safety: str = "off"  # off | warn | block: off until the probe is calibrated on natural benign queries (README)


@dataclass
class TrainConfig:
    queries: str = "packaged"  # the shipped pool, or a .txt/.jsonl/.csv file of queries
    max_queries: int = 2000  # sampled from the pool (deterministic); sized for responses on a CPU
    heldout: float = 0.04  # share of queries kept aside for held-out metrics (at least 50)
    max_new_tokens: int = 128
    gen_batch_size: int = 16
    fit: str = "closed-form"  # closed-form | gradient | closed-form+gradient
    ridge_lambdas: list = field(default_factory=lambda: [1.0, 10.0, 100.0, 1000.0, 10000.0])
    steps: int = 300
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 3e-4
    tokens_lr: float = 3e-3
    warmup: int = 100
    align_weight: float = 1.0
    recon_weight: float = 1.0
    recon_max_tokens: int = 64
    eval_every: int = 50
    checkpoint_every: int = 50
    gradient_checkpointing: bool = False
    seed: int = 0


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve_config_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    for folder in (Path.cwd() / "configs", REPO_CONFIGS):
        candidate = folder / f"{name_or_path}.yaml"
        if candidate.is_file():
            return candidate
    raise ConfigError(f"config {name_or_path!r} not found (a YAML path, or a name under configs/)")


def _overlay(obj, values: dict, where: str):
    for key, value in values.items():
        if not hasattr(obj, key):
            raise ConfigError(f"unknown config key {where}{key!r}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config section {where}{key!r} must be a mapping")
            _overlay(current, value, f"{where}{key}.")
        else:
            setattr(obj, key, value)


def load_config(source: str | Path | Config | None = None, **overrides) -> Config:
    """Defaults, overlaid by a YAML file (argument or GENRETRIEVE_CONFIG), then by overrides.

    Overrides use dotted keys with the dots replaced by "__", e.g. index__doc_encoder="gen";
    None values are ignored so CLI flags left unset do not clobber the file.
    """
    if isinstance(source, Config):
        config = copy.deepcopy(source)  # the caller's config stays as it was
    else:
        config = Config()
        source = source or os.environ.get("GENRETRIEVE_CONFIG")
        if source:
            path = resolve_config_path(str(source))
            try:
                values = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: expected a mapping of sections")
            _overlay(config, values, "")
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, key = dotted.split("__")
        _overlay(config, {section: {key: value}}, "")
    return config
