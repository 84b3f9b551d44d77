"""Configuration: dataclasses with defaults, optionally overlaid by a YAML file, then by CLI flags.

Precedence is CLI > file > defaults. A file is named by path or by a name under `configs/`
(`--config qwen3-0.6b` finds `configs/qwen3-0.6b.yaml`, in the current directory or shipped in the
package); `GENRETRIEVE_CONFIG` names the file when no flag does. The resolved config is written
beside every index and adapter, so each artefact says how it was made. `validate` checks every
key's type (from the dataclass annotations) and its allowed values or range (from one table,
`RULES`) when the config loads, before any model does.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# a link to the repo's configs/ in a checkout, the copied files in an installed package (pyproject)
PACKAGED_CONFIGS = Path(__file__).resolve().parent / "configs"


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
    token_init: str = "prompt"  # prompt: chat framing, tokens from the assistant header | random: plain framing
    # the chat framing's user turn is the query itself; the plain framing prefixes an instruction
    query_instruction: str = ""
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
    safety: str = "warn"  # off | warn | block: the shipped probe meets all its targets (README); off: no LLM in teacher mode


@dataclass
class TrainConfig:
    queries: str = "packaged"  # the shipped pool, or a .txt/.jsonl/.csv file of queries
    max_queries: int = 4096  # the first N of the pool in hash order: the shipped answers cover exactly these
    # with the packaged pool, also the fit part of the natural questions (real FAQ and help-page questions,
    # genretrieve.safety.data): they took gen from 0.220 to 0.362 nDCG@10 on the dev set (README)
    natural_questions: bool = True
    max_natural_questions: int = 4096  # the first N of that fit part in hash order (it holds 1,683)
    heldout: float = 0.04  # share of queries kept aside for held-out metrics (at least 50)
    max_new_tokens: int = 64  # the answer's opening carries its topic; answers are the CPU's bottleneck
    gen_batch_size: int = 16
    # closed-form start, then gradient steps through the 10 tokens (README: what decided each value)
    fit: str = "closed-form+gradient"  # closed-form | gradient | closed-form+gradient
    ridge_lambdas: list = field(default_factory=lambda: [1.0, 10.0, 100.0, 1000.0, 10000.0])
    steps: int = 300
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 1e-5  # the projections: 3e-4 undid the closed-form start within 50 steps
    tokens_lr: float = 3e-4  # the 10 token rows
    warmup: int = 30
    align_weight: float = 1.0
    recon_weight: float = 0.0  # L_recon: several times the step cost (README); 0 = readout-only, not decodable
    recon_max_tokens: int = 64
    eval_every: int = 100
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


# Allowed values and ranges, per dotted key; the types come from the dataclass annotations. The choice
# lists mirror the tables that use them (models/device.py DTYPES, index KINDS, search MODES, train fits),
# which import torch or faiss; tests/test_reliability_cli.py checks that they agree.
DTYPES = ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")
INDEX_KINDS = ("auto", "flat", "ivf", "hnsw", "ivf-sq8", "ivf-pq")
SEARCH_MODES = ("gen", "teacher", "keyword", "hybrid")
SAFETY_LEVELS = ("off", "warn", "block")
FITS = ("closed-form", "gradient", "closed-form+gradient")
RULES: dict[str, tuple] = {
    "model.teacher_pooling": ("mean", "cls"), "model.dtype": DTYPES, "model.token_init": ("prompt", "random"),
    "model.device": re.compile(r"auto|cpu|mps|cuda(:\d+)?"),
    "model.max_length": (">=", 1), "model.batch_size": (">=", 1),
    "index.chunk_tokens": (">=", 1), "index.chunk_overlap": ("[)", 0.0, 1.0),
    "index.doc_encoder": ("teacher", "gen"), "index.kind": INDEX_KINDS,
    "search.k": (">=", 1), "search.mode": SEARCH_MODES, "search.hybrid_weight": ("[]", 0.0, 1.0),
    "search.safety": SAFETY_LEVELS,
    "train.max_queries": (">=", 1), "train.max_natural_questions": (">=", 1), "train.heldout": ("()", 0.0, 1.0),
    "train.max_new_tokens": (">=", 1),
    "train.gen_batch_size": (">=", 1), "train.fit": FITS, "train.ridge_lambdas": (">", 0.0),
    "train.steps": (">=", 0), "train.batch_size": (">=", 1), "train.grad_accum": (">=", 1),
    "train.lr": (">", 0.0), "train.tokens_lr": (">=", 0.0), "train.warmup": (">=", 0),
    "train.align_weight": (">=", 0.0), "train.recon_weight": (">=", 0.0), "train.recon_max_tokens": (">=", 1),
    "train.eval_every": (">=", 1), "train.checkpoint_every": (">=", 1),
}
_TYPE_NAMES = {"str": "text", "int": "an integer", "float": "a number", "bool": "true or false",
               "list": "a list of numbers"}


def _typed(key: str, kind: str, value):
    """`value` as the annotated type, or ConfigError. PyYAML reads `1e-4` as a string, so floats accept numeric text."""
    if kind == "float" and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind == "list" and isinstance(value, list):
        return [_typed(key, "float", v) for v in value]
    expected = {"str": str, "int": int, "float": float, "bool": bool, "list": list}[kind]
    if not isinstance(value, expected) or (kind == "int" and isinstance(value, bool)):
        raise ConfigError(f"{key} must be {_TYPE_NAMES[kind]}, not {value!r}")
    return value


def _check_rule(key: str, value, rule) -> None:
    if isinstance(rule, re.Pattern):
        if not rule.fullmatch(value):
            raise ConfigError(f"{key} must be auto, cpu, mps or cuda[:N], not {value!r}")
    elif rule[0] in (">=", ">", "[)", "[]", "()"):
        low, high = rule[1], rule[2] if len(rule) > 2 else None
        for v in value if isinstance(value, list) else [value]:
            ok = {">=": lambda: v >= low, ">": lambda: v > low, "[)": lambda: low <= v < high,
                  "[]": lambda: low <= v <= high, "()": lambda: low < v < high}[rule[0]]()
            if not ok:
                bounds = {">=": f"at least {low}", ">": f"above {low}", "[)": f"in [{low}, {high})",
                          "[]": f"in [{low}, {high}]", "()": f"in ({low}, {high})"}[rule[0]]
                raise ConfigError(f"{key} must be {bounds}, not {v!r}")
    elif value not in rule:
        raise ConfigError(f"{key} must be one of {' | '.join(rule)}, not {value!r}")


def validate(config: "Config") -> None:
    """Check (and normalise: int -> float, numeric text -> float) every key; raises ConfigError naming the key."""
    for section in dataclasses.fields(config):
        values = getattr(config, section.name)
        for f in dataclasses.fields(values):
            key = f"{section.name}.{f.name}"
            value = _typed(key, str(f.type).split("[")[0], getattr(values, f.name))
            setattr(values, f.name, value)
            if key in RULES:
                _check_rule(key, value, RULES[key])


def resolve_config_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    for folder in (Path.cwd() / "configs", PACKAGED_CONFIGS):
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
    validate(config)
    return config
