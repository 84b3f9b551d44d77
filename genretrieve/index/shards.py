"""The shard file contract: `index PATH --shard I/N` writes `DIR/shards/I-of-N/`, `merge DIR` joins them.

A file belongs to shard `sha256(relative path) mod N`, so any scheduler can run the N parts
anywhere without coordination. A shard is an ordinary index folder (same manifest identity,
its own meta.sqlite with vectors) whose manifest also records its place, a fingerprint of the
whole folder's listing and a completion stamp; `check_shards` refuses a set that is missing,
duplicated, overlapping, unfinished or built from other models or another folder, naming what
is wrong. Concession: the listing compares file names only, not contents.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import GenretrieveError, UsageError
from ..atomic import write_text
from .folder import MANIFEST, IndexFolder, identity_differences
from .folder import SHARDS_DIR as SHARDS
_NAME = re.compile(r"(\d+)-of-(\d+)")
_STAGING_SUFFIXES = ("merge", "rebuild", "staging")


def shard_of(rel: str, count: int) -> int:
    """Stable across machines and Python runs (unlike hash()): the first 8 bytes of the path's sha256."""
    return int.from_bytes(hashlib.sha256(rel.encode()).digest()[:8], "big") % count


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N), with I counted from 0 (like a Slurm array 0..N-1)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match:
        raise UsageError(f"--shard takes I/N (e.g. 0/4), not {text!r}")
    index, count = int(match[1]), int(match[2])
    if count < 1 or index >= count:
        raise UsageError(f"--shard {text}: I must be 0..N-1 (shards are counted from 0)")
    return index, count


def shard_name(index: int, count: int) -> str:
    return f"{index}-of-{count}"


def shard_dir(index_dir: Path, index: int, count: int) -> Path:
    return Path(index_dir) / SHARDS / shard_name(index, count)


def listing_fingerprint(rels: list[str]) -> dict:
    return {"files": len(rels), "sha256": hashlib.sha256("\n".join(sorted(rels)).encode()).hexdigest()}


def mark_shard_complete(folder: IndexFolder, shard: tuple[int, int], listing: dict, failed: list[dict]) -> None:
    """Stamp the shard with the store generation it finished at: a later, interrupted run changes the generation."""
    folder.manifest["shard"] = {"index": shard[0], "count": shard[1], "listing": listing, "failed": failed,
                                "generation": folder.store.generation()}
    write_text(folder.path / MANIFEST, json.dumps(folder.manifest, indent=2))


def recover_shards(index_dir: Path) -> None:
    """Move shards back if a swap was cut off between moving them into a staging folder and the rename."""
    index_dir = Path(index_dir)
    if (index_dir / SHARDS).exists():
        return
    for suffix in _STAGING_SUFFIXES:
        stranded = index_dir.with_name(f".{index_dir.name}.{suffix}") / SHARDS
        if stranded.is_dir():
            index_dir.mkdir(parents=True, exist_ok=True)
            os.replace(stranded, index_dir / SHARDS)
            return


def discard_staging(staging: Path, live: Path) -> None:
    if (Path(staging) / SHARDS).is_dir():
        recover_shards(live)
    shutil.rmtree(staging, ignore_errors=True)


@dataclass
class Shard:
    index: int
    count: int
    path: Path
    manifest: dict

    @property
    def name(self) -> str:
        return shard_name(self.index, self.count)


def check_shards(index_dir: Path) -> list[Shard]:
    """The complete, consistent shard set under DIR/shards, in order; otherwise one error listing every problem."""
    index_dir = Path(index_dir)
    recover_shards(index_dir)
    base = index_dir / SHARDS
    entries = sorted(p for p in base.iterdir() if not p.name.startswith(".")) if base.is_dir() else []
    if not entries:
        raise GenretrieveError(f"no shards under {base}: build them with "
                               f"genretrieve index PATH --shard I/N --index {index_dir} (I = 0..N-1)")
    problems, shards = [], []
    for entry in entries:
        match = _NAME.fullmatch(entry.name)
        if not match or not entry.is_dir():
            problems.append(f"{entry.name}: not a shard folder (shard folders are named I-of-N); move it away")
        elif not (entry / MANIFEST).exists():
            problems.append(f"{entry.name}: no manifest (its run never got going); re-run it")
        else:
            shard = Shard(int(match[1]), int(match[2]), entry, json.loads((entry / MANIFEST).read_text()))
            stamp = shard.manifest.get("shard") or {}
            if "index" in stamp and (stamp["index"], stamp["count"]) != (shard.index, shard.count):
                problems.append(f"{entry.name}: holds shard {shard_name(stamp['index'], stamp['count'])} "
                                "(a duplicated or renamed folder); remove it")
            else:
                shards.append(shard)
    counts = sorted({s.count for s in shards})
    if len(counts) > 1:
        problems.append(f"shards of different splits ({', '.join(s.name for s in shards)}); "
                        "keep one N and remove the others")
    elif shards:
        count = counts[0]
        missing = sorted(set(range(count)) - {s.index for s in shards})
        if missing:
            problems.append(f"missing shard{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(shard_name(i, count) for i in missing)}: run "
                            f"genretrieve index PATH --index {index_dir} --shard I/{count} for I in "
                            f"{', '.join(map(str, missing))}")
    problems += _content_problems(shards)
    if problems:
        raise GenretrieveError(f"cannot merge the shards in {base}:\n  - " + "\n  - ".join(problems))
    return sorted(shards, key=lambda s: s.index)


def _content_problems(shards: list[Shard]) -> list[str]:
    """Unfinished shards, other models, another folder, and files in the wrong or in two shards."""
    problems, owner = [], {}
    for shard in shards:
        stamp, folder = shard.manifest.get("shard") or {}, IndexFolder(shard.path)
        try:
            if stamp.get("generation") != folder.store.generation():
                problems.append(f"{shard.name}: incomplete (its run was interrupted or is still going); re-run it")
            paths = sorted(folder.store.file_records())
        finally:
            folder.close()
        differences = identity_differences(shards[0].manifest["identity"], shard.manifest["identity"])
        if differences:
            problems.append(f"{shard.name}: built with other settings than {shards[0].name} "
                            f"({'; '.join(differences)}); rebuild it with the same config")
        first = (shards[0].manifest.get("shard") or {}).get("listing")
        if stamp.get("listing") and first and stamp["listing"] != first:
            problems.append(f"{shard.name}: saw another folder than {shards[0].name} ({stamp['listing']['files']} "
                            f"vs {first['files']} files); re-run the stale shards on the same folder")
        for path in paths:
            if path in owner:
                problems.append(f"{path} is in both {owner[path]} and {shard.name} (a duplicated shard?)")
            elif shard_of(path, shard.count) != shard.index:
                problems.append(f"{path} belongs to shard {shard_name(shard_of(path, shard.count), shard.count)}, "
                                f"not {shard.name} (a copied or renamed shard?)")
            owner.setdefault(path, shard.name)
    return problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
