"""Real English text that ships with every Python: the standard library's docstrings.

Speed benchmarks need realistic queries and ~200-token passages without downloading anything;
docstrings of stdlib modules are real prose, deterministic for a given Python version.
"""
from __future__ import annotations

import importlib
import inspect
import re

MODULES = ["argparse", "asyncio", "collections", "csv", "datetime", "decimal", "email", "functools", "heapq",
           "http.client", "json", "logging", "multiprocessing", "os", "pathlib", "pickle", "random", "re",
           "shutil", "socket", "sqlite3", "statistics", "string", "subprocess", "tarfile", "threading", "typing",
           "unittest", "urllib.request", "uuid", "zipfile"]


def docstrings() -> list[str]:
    texts = []
    for name in MODULES:
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module):
            doc = inspect.getdoc(obj) if (inspect.isfunction(obj) or inspect.isclass(obj)) else None
            if doc and len(doc) > 200:
                texts.append(re.sub(r"\s+", " ", doc))
    return sorted(set(texts))


def passages(n: int, words: int = 150) -> list[str]:
    """n passages of about `words` words (~200 tokens), cut from the docstrings joined end to end."""
    stream = " ".join(docstrings()).split()
    if not stream:
        raise RuntimeError("no docstrings found")
    return [" ".join(stream[(i * words) % len(stream):][:words]) for i in range(n)]


def queries(n: int) -> list[str]:
    """n short question-like texts: the first sentence of each docstring, made a question."""
    firsts = [d.split(". ")[0].rstrip(".")[:120] for d in docstrings()]
    return [f"How do I {f[0].lower()}{f[1:]}?" for f in firsts[:n]]
