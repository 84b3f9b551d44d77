"""One index = one folder: `manifest.json`, `meta.sqlite` (chunks + vectors), and the derived FAISS files.

The manifest pins what makes vectors comparable, per vector space: teacher-encoded documents
depend on the teacher alone (another adapter or backbone still opens them, and teacher-mode search
needs no LLM), gen-encoded ones also on the backbone and adapter; writing also pins the document
encoder and chunking. An index is opened only by a matching encoder, otherwise the user is told
to `--rebuild`. Older manifests hold every key and open under the same rule.

SQLite holds the vectors; the FAISS files are derived from it by `write_vectors` at the end of an
index run or merge (`vectors.faiss` for the in-RAM kinds, `vectors.ondisk` + one `.ivfdata` for
the on-disk ones), and the manifest records what they hold (`vectors`: the store generation they
were derived from, kind, count). Search loads them as they are and checks them against that
record: a missing, unreadable or inconsistent file is an error naming the command that derives
it again, never rebuilt on the read path. A store generation past the record means an index run
is going on (or was cut off): search answers from the last derived files, and the hits are joined
to the store's rows by id, so deleted chunks drop out. (`vectors.npz`, a third copy of the
vectors written by earlier versions, is ignored and deleted by the next run.)

The manifest carries a format marker (`"type": "genretrieve-index"`) and the indexed roots, so
`rm` deletes only a folder it can prove is an index, and only the index's own files (OWN_FILES),
and an index run refuses a folder holding anything else, or another root than the one indexed.
A reader (`readonly=True`, the search path) never writes. A manifest or database that cannot be
read raises DamagedIndex, naming the rebuild command.
"""
from __future__ import annotations

import fnmatch
import json
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from ..config import Config
from ..errors import DamagedIndex, GenretrieveError, IncompatibleArtifact, UsageError
from ..atomic import write_text
from .lock import LOCK, is_locked
from .ondisk import ONDISK_KINDS, OnDiskIndex, build_ondisk, is_current, remove_stale
from .store import Store
from .vectors import KINDS, VectorIndex

FAISS_FILE = "vectors.faiss"
LEGACY_FILES = ("vectors.npz",)  # written by earlier versions (a third copy of the vectors): deleted by the next run
MANIFEST = "manifest.json"
MARKER = "genretrieve-index"  # manifest["type"]: what proves a folder is an index
SHARDS_DIR = "shards"  # where sharded runs write (shards.py imports it as SHARDS)
# Everything an index writes into its folder, temp and lock files included (fnmatch patterns).
OWN_FILES = (MANIFEST, f".{MANIFEST}.*", "meta.sqlite", "meta.sqlite-journal", "meta.sqlite-wal", "meta.sqlite-shm",
             "vectors.faiss", ".vectors.faiss.*.tmp", "vectors.npz", ".vectors.npz.*.tmp", "vectors.ondisk",
             ".vectors.ondisk.*.tmp", "vectors.*.ivfdata", ".ondisk-build.*", LOCK, SHARDS_DIR)


def is_own_file(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in OWN_FILES)


def rebuild_hint(path: Path, roots: list[str] | None = None) -> str:
    return f"rebuild with `genretrieve index {roots[0] if roots else 'PATH'} --index {path} --rebuild`"


def rederive_hint(path: Path, manifest: dict) -> str:
    """The cheap fix for the FAISS files: an index run (or merge) derives them again from SQLite, re-encoding nothing."""
    roots, kind = manifest.get("roots"), (manifest.get("vectors") or {}).get("kind", "auto")
    command = (f"genretrieve merge {path}" if manifest.get("merged") else
               f"genretrieve index {roots[0] if roots else 'PATH'} --index {path}") + \
        (f" --kind {kind}" if kind != "auto" else "")
    return f"run `{command}`, which derives them again from meta.sqlite without re-encoding (or {rebuild_hint(path, roots)})"


def read_manifest(path: Path) -> dict:
    """The manifest of the index at `path`, checked enough to be used; DamagedIndex otherwise."""
    try:
        manifest = json.loads((Path(path) / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DamagedIndex(f"the index at {path} is damaged (its {MANIFEST} cannot be read: {exc}); "
                           f"{rebuild_hint(path)}") from exc
    identity = manifest.get("identity") if isinstance(manifest, dict) else None
    if not isinstance(identity, dict) or not isinstance(identity.get("dim"), int):
        raise DamagedIndex(f"the index at {path} is damaged (its {MANIFEST} lacks the index identity); "
                           f"{rebuild_hint(path)}")
    return manifest


def _read_or(path: Path, default: dict) -> dict:
    try:
        return read_manifest(path)
    except DamagedIndex:
        return default


def is_marked(manifest: dict) -> bool:
    """Our format marker, or a manifest written before the marker existed (identity + genretrieve version)."""
    return manifest.get("type") == MARKER or (
        manifest.get("format") == 1 and isinstance(manifest.get("identity"), dict)
        and "genretrieve" in (manifest.get("versions") or {}))


def check_index_target(path: Path) -> None:
    """Refuse, before any model loads, an --index that is a file or a folder holding files that are not an index's."""
    path = Path(path)
    if path.is_file():
        raise UsageError(f"--index {path} is a file; give a folder (new, empty, or an existing index)")
    if path.is_dir():
        others = sorted(p.name for p in path.iterdir() if not is_own_file(p.name))
        if others:
            listed = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            raise UsageError(f"--index {path} holds other files ({listed}); an index needs a folder of its own: "
                             "give a new or empty folder")


# the keys the vectors of each space depend on (the space is the index's document encoder)
SPACE_KEYS = {"teacher": ("teacher", "dim"), "gen": ("backbone", "teacher", "adapter", "dim")}
WRITE_KEYS = ("doc_encoder", "chunking")  # adding chunks also needs the same encoder and chunker


def index_identity(encoder, config: Config, no_chunk: bool = False) -> dict:
    """What the encoder vouches for (the backbone and adapter only when it has them), plus the chunker."""
    identity = {"teacher": {"id": encoder.teacher.model_id, "fingerprint": encoder.teacher.fingerprint}}
    if getattr(encoder.backbone, "fingerprint", None) is not None:  # the teacher-only encoder has no LLM
        identity["backbone"] = {"id": encoder.backbone.model_id, "fingerprint": encoder.backbone.fingerprint}
        identity["adapter"] = {"fingerprint": encoder.card["fingerprint"], "trained": encoder.card["trained"]}
    return {**identity, "doc_encoder": config.index.doc_encoder, "dim": encoder.dim,
            "chunking": None if no_chunk else {"tokens": config.index.chunk_tokens, "overlap": config.index.chunk_overlap}}


def space_keys(identity: dict, write: bool = False) -> tuple[str, ...]:
    return SPACE_KEYS[identity.get("doc_encoder", "gen")] + (WRITE_KEYS if write else ())


def identity_differences(old: dict, new: dict, keys=None) -> list[str]:
    return [f"{key}: index has {old.get(key)}, now {new.get(key)}" for key in (keys or new)
            if old.get(key) != new.get(key)]


class IndexFolder:
    def __init__(self, path: Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly  # a reader: never writes (search)
        manifest = self.path / MANIFEST
        if not manifest.exists():
            if (self.path / "shards").is_dir():  # sharded runs write only there until merged
                raise GenretrieveError(f"{self.path} holds shards but no merged index yet: run genretrieve merge {self.path}")
            raise GenretrieveError(f"no index at {self.path}; build one with: genretrieve index PATH --index {self.path}")
        self.manifest = read_manifest(self.path)
        self._store: Store | None = None

    @classmethod
    def create_or_open(cls, path: Path, identity: dict, config: Config,
                       roots: list[str] | None = None) -> "IndexFolder":
        path = Path(path)
        check_index_target(path)
        if (path / MANIFEST).exists():
            folder = cls(path)
            differences = identity_differences(folder.manifest["identity"], identity, space_keys(identity, write=True))
            if differences:
                raise IncompatibleArtifact(
                    f"the index at {path} was built with other settings ({'; '.join(differences)}). "
                    "Mixing them would give meaningless scores: re-run with --rebuild (or use another --index).")
            return folder
        path.mkdir(parents=True, exist_ok=True)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        manifest = {"type": MARKER, "format": 1, "roots": roots or [], "identity": identity,
                    "config": config.to_dict(), "created": now, "updated": now,
                    "versions": library_versions()}
        write_text(path / MANIFEST, json.dumps(manifest, indent=2))
        return cls(path)

    def claim_root(self, root: Path) -> None:
        """Refuse to index another root into this index (its files would be pruned); record the root if new."""
        root_s = str(Path(root).resolve())
        roots = self.manifest.get("roots") or []
        if roots and root_s not in roots:
            raise UsageError(
                f"the index at {self.path} holds {', '.join(roots)}; indexing {root_s} into it would drop those files. "
                f"Index {roots[0]} again to update it, give another --index for {root_s}, "
                f"or replace its content with --rebuild")
        if not roots:  # a new index, or one made before roots were recorded
            self.manifest["roots"] = [root_s]
            write_text(self.path / MANIFEST, json.dumps(self.manifest, indent=2))

    def matches(self, identity: dict) -> bool:
        return not identity_differences(self.manifest["identity"], identity, space_keys(identity, write=True))

    @property
    def space(self) -> str:
        """teacher | gen: what encoded the documents, hence which models a search must match."""
        return self.manifest["identity"].get("doc_encoder", "gen")

    def check_encoder(self, identity: dict) -> None:
        """Refuse to search with an encoder whose vectors do not live in this index's space."""
        differences = identity_differences(self.manifest["identity"], identity, space_keys(self.manifest["identity"]))
        if differences:
            raise IncompatibleArtifact(
                f"the index at {self.path} was built with another model ({'; '.join(differences)}); "
                "search with the config it was built with, or re-index with --rebuild.")

    @property
    def store(self) -> Store:
        if self._store is None:
            try:
                self._store = Store(self.path / "meta.sqlite", readonly=self.readonly)
            except DamagedIndex as exc:
                raise DamagedIndex(f"the index at {self.path} is damaged ({exc}); "
                                   f"{rebuild_hint(self.path, self.manifest.get('roots'))}") from exc
        return self._store

    def write_vectors(self, kind: str = "auto", blocks: list[np.ndarray] | None = None) -> None:
        """Derive the FAISS files from the vectors in SQLite and record in the manifest what they hold.

        On-disk kinds (ondisk.py) read SQLite in blocks (`blocks`: chunk-id arrays, e.g. one per shard)."""
        check_kind(kind)
        dim, stamp = self.manifest["identity"]["dim"], {"generation": self.store.generation(), "kind": kind}
        if kind in ONDISK_KINDS:
            stamp["ondisk"] = build_ondisk(self.path, self.store, dim, kind, blocks)
            stamp["count"] = stamp["ondisk"]["count"]
        else:
            ids, vectors = self.store.all_vectors()
            index = VectorIndex.build(ids, vectors, kind, dim)
            index.save(self.path / FAISS_FILE)
            stamp.update(count=len(index), built=index.kind, nprobe=index.nprobe,
                         bytes=(self.path / FAISS_FILE).stat().st_size)
        self.manifest["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.manifest["vectors"] = stamp
        write_text(self.path / MANIFEST, json.dumps(self.manifest, indent=2))
        # the other kind's files, and what earlier versions wrote, would only waste disk: drop them once the
        # manifest names the new files
        remove_stale(self.path, stamp.get("ondisk"))
        for name in LEGACY_FILES + ((FAISS_FILE,) if "ondisk" in stamp else ()):
            (self.path / name).unlink(missing_ok=True)

    def vector_index(self, gpu: bool | None = None) -> VectorIndex | OnDiskIndex:
        """The FAISS index the last run derived, checked against the manifest's record; never rebuilt here.

        An index run replaces the FAISS file first and the manifest right after: a reader that read the old
        manifest and the new file reads the manifest again (waiting, up to 2 s, while a run holds the lock)."""
        deadline = time.monotonic() + 2
        while True:
            try:
                return self._load_vectors(gpu)
            except DamagedIndex:
                seen, self.manifest = self.manifest, _read_or(self.path, self.manifest)
                if self.manifest.get("vectors") != seen.get("vectors"):
                    continue  # a run finished meanwhile: load what it wrote
                if time.monotonic() < deadline and is_locked(self.path):
                    time.sleep(0.05)
                    continue
                raise

    def check_vectors(self) -> None:
        """The cheap part of the check (the files are there, at the recorded size), before any model loads."""
        stamp = self.manifest.get("vectors") or {}
        if stamp.get("kind") in ONDISK_KINDS:
            if not is_current(self.path, stamp.get("ondisk")):
                raise self._vectors_problem("are missing (the last run was cut off before writing them)")
            return
        path = self.path / FAISS_FILE
        if not stamp or not path.exists():
            raise self._vectors_problem(f"are missing ({FAISS_FILE}; the last run was cut off before writing it)")
        if stamp.get("bytes", path.stat().st_size) != path.stat().st_size:  # no size in manifests of earlier versions
            raise self._vectors_problem(f"are damaged ({FAISS_FILE} has {path.stat().st_size:,} bytes, the manifest "
                                        f"records {stamp['bytes']:,})")

    def _load_vectors(self, gpu: bool | None) -> VectorIndex | OnDiskIndex:
        self.check_vectors()
        stamp, dim = self.manifest["vectors"], self.manifest["identity"]["dim"]
        try:
            if stamp["kind"] in ONDISK_KINDS:  # never reads the raw vectors: the lists stay on disk, mmapped
                info = stamp["ondisk"]
                return OnDiskIndex(self.path, self.store, dim, info["nprobe"], info.get("rerank", 0))
            index = VectorIndex.load(self.path / FAISS_FILE, lambda ids: self.store.vectors_of(ids, dim, missing_ok=True),
                                     gpu=gpu, nprobe=stamp.get("nprobe"))
        except RuntimeError as exc:  # what FAISS raises for a truncated or foreign file
            raise self._vectors_problem(f"are damaged (FAISS cannot read them: {str(exc).splitlines()[0]})") from exc
        if len(index) != stamp.get("count", len(index)) or index.dim != dim:
            raise self._vectors_problem(f"do not match its manifest ({FAISS_FILE} holds {len(index)} vectors of "
                                        f"dimension {index.dim}; the manifest records {stamp.get('count')} of {dim})")
        return index

    def _vectors_problem(self, what: str) -> DamagedIndex:
        return DamagedIndex(f"the FAISS files of the index at {self.path} {what}; {rederive_hint(self.path, self.manifest)}")

    def vectors_behind(self) -> bool:
        """True when chunks were committed after the FAISS files were derived and no index run is going on (one was
        cut off): vector search does not see those chunks until the next run."""
        stamp = self.manifest.get("vectors") or {}
        return bool(stamp) and stamp.get("generation") != self.store.generation() and not is_locked(self.path)

    def describe(self) -> dict:
        size = sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())
        identity = self.manifest["identity"]
        return {"path": str(self.path), "chunks": self.store.count_chunks(), "files": self.store.count_files(),
                "bytes": size, "backbone": identity.get("backbone", {}).get("id"),
                "adapter": identity.get("adapter", {}).get("fingerprint"),
                "adapter_trained": identity.get("adapter", {}).get("trained"), "doc_encoder": identity["doc_encoder"],
                "updated": self.manifest["updated"]}

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def check_kind(kind: str) -> None:
    """Refuse an unknown index kind before anything is written."""
    if kind not in KINDS + ONDISK_KINDS:
        raise UsageError(f"--kind must be one of {' | '.join(KINDS + ONDISK_KINDS)}, not {kind!r}")


def library_versions() -> dict:
    import faiss
    import torch
    import transformers

    return {"genretrieve": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "faiss": faiss.__version__}


def remove_index(path: Path) -> list[str]:
    """Delete the index at `path`: only its own files, only if it is provably an index; returns the names kept.

    Proof: a manifest with our marker, or (a damaged index) an unreadable manifest beside meta.sqlite
    in a folder holding nothing but an index's own files. Anything else in the folder is left."""
    path = Path(path)
    if not path.is_dir():
        raise GenretrieveError(f"no index at {path}" if not path.exists() else f"{path} is a file, not an index folder")
    names = sorted(p.name for p in path.iterdir())
    others = [n for n in names if not is_own_file(n)]
    try:
        marked = is_marked(json.loads((path / MANIFEST).read_text()))
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        marked = False
    # a damaged index, or the bare lock an index run that failed at once left behind
    damaged = (MANIFEST in names and "meta.sqlite" in names or names == [LOCK]) and not others
    if not marked and not damaged:
        raise GenretrieveError(f"{path} is not a genretrieve index (no manifest with the genretrieve marker"
                               f"{', and it holds ' + ', '.join(others[:5]) if others else ''}); nothing deleted")
    if is_locked(path):
        raise GenretrieveError(f"another `genretrieve index` run holds {path}; nothing deleted")
    shards = path / SHARDS_DIR
    if shards.is_dir():  # each shard is an index folder of its own
        for shard in sorted(shards.iterdir()):
            kept = remove_index(shard) if shard.is_dir() else [""]
            others += [f"{SHARDS_DIR}/{shard.name}/{name}".rstrip("/") for name in kept]
        if not any(shards.iterdir()):
            shards.rmdir()
    for name in names:
        target = path / name
        if name in others or name == SHARDS_DIR or not target.exists():
            continue
        shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
    if not any(path.iterdir()):
        path.rmdir()
    return others
