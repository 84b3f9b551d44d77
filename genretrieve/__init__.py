"""genretrieve: semantic search with generative embeddings.

The library API (README, "Python API"): `load_config`, `load_encoder` (or `load_teacher_encoder`,
without the LLM), `build_index` and `Searcher`. They are imported lazily so that `import
genretrieve` (and `genretrieve --help`) does not pay for importing torch and transformers.
"""
import importlib
import os

# Busy 2-core machines: spinning OpenMP workers made generation several times slower
# (README, `genretrieve bench speed`).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
_API = {"load_config": ".config", "load_encoder": ".models.load", "load_teacher_encoder": ".models.load",
        "build_index": ".index.build", "Searcher": ".search"}
__all__ = [*_API, "__version__"]


def __getattr__(name):
    if name in _API:
        return getattr(importlib.import_module(_API[name], __name__), name)
    raise AttributeError(f"module 'genretrieve' has no attribute {name!r}")
