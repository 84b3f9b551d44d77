"""genretrieve: semantic search with generative embeddings.

`load_encoder()` is imported lazily so that `import genretrieve` (and `genretrieve --help`)
does not pay for importing torch and transformers.
"""
import os

# Busy 2-core machines: spinning OpenMP workers made generation several times slower (findings.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
__all__ = ["load_encoder", "__version__"]


def __getattr__(name):
    if name == "load_encoder":
        from .models.load import load_encoder
        return load_encoder
    raise AttributeError(name)
