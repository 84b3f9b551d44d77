"""One index = one folder: `manifest.json`, `meta.sqlite` (chunks + vectors), and the derived FAISS files.

The manifest pins what makes vectors comparable, per vector space: teacher-encoded documents
depend on the teacher alone (another adapter or backbone still opens them, and teacher-mode search
needs no LLM), gen-encoded ones also on the backbone and adapter; writing also pins the document
encoder and chunking. An index is opened only by a matching encoder, otherwise the user is told
to `--rebuild`. Older manifests hold every key and open under the same rule. The FAISS files are
a cache of the vectors in SQLite, stamped with the store's generation, and rebuilt when stale:
`vectors.faiss` + `vectors.npz` for the in-RAM kinds, `vectors.ondisk` + one `.ivfdata` for the
on-disk ones.
"""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from ..config import Config
from ..errors import GenretrieveError, IncompatibleArtifact, UsageError
from ..models.assets import atomic_write_text
from .ondisk import ONDISK_KINDS, OnDiskIndex, build_ondisk, is_current, remove_stale
from .store import Store
from .vectors import KINDS, VectorIndex

MANIFEST = "manifest.json"


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
    def __init__(self, path: Path):
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.exists():
            if (self.path / "shards").is_dir():  # sharded runs write only there until merged
                raise GenretrieveError(f"{self.path} holds shards but no merged index yet: run genretrieve merge {self.path}")
            raise GenretrieveError(f"no index at {self.path}; build one with: genretrieve index PATH --index {self.path}")
        self.manifest = json.loads(manifest.read_text())
        self._store: Store | None = None

    @classmethod
    def create_or_open(cls, path: Path, identity: dict, config: Config) -> "IndexFolder":
        path = Path(path)
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
        manifest = {"format": 1, "identity": identity, "config": config.to_dict(), "created": now, "updated": now,
                    "versions": library_versions()}
        atomic_write_text(path / MANIFEST, json.dumps(manifest, indent=2))
        return cls(path)

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
            self._store = Store(self.path / "meta.sqlite")
        return self._store

    def write_vectors(self, kind: str = "auto", blocks: list[np.ndarray] | None = None) -> None:
        """Derive the FAISS files from the vectors in SQLite and stamp them with the store's generation.

        On-disk kinds (ondisk.py) read SQLite in blocks (`blocks`: chunk-id arrays, e.g. one per shard)."""
        check_kind(kind)
        dim, stamp = self.manifest["identity"]["dim"], {"generation": self.store.generation(), "kind": kind}
        if kind in ONDISK_KINDS:
            stamp["ondisk"] = build_ondisk(self.path, self.store, dim, kind, blocks)
            stamp["count"] = stamp["ondisk"]["count"]
        else:
            ids, vectors = self.store.all_vectors()
            index = VectorIndex(dim, kind=kind)
            if len(ids):
                index.add(ids, vectors.astype(np.float32))
            index.save(self.path)
            stamp["count"] = len(ids)
        self.manifest["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.manifest["vectors"] = stamp
        atomic_write_text(self.path / MANIFEST, json.dumps(self.manifest, indent=2))
        # the other kind's files would only waste disk (and, loaded, RAM): drop them once the manifest is written
        remove_stale(self.path, stamp.get("ondisk"))
        if "ondisk" in stamp:
            for name in ("vectors.faiss", "vectors.npz"):
                (self.path / name).unlink(missing_ok=True)

    def vector_index(self, gpu: bool | None = None) -> VectorIndex | OnDiskIndex:
        stamp = self.manifest.get("vectors", {})
        kind = stamp.get("kind", "auto")
        present = is_current(self.path, stamp.get("ondisk")) if kind in ONDISK_KINDS \
            else (self.path / "vectors.npz").exists()
        if stamp.get("generation") != self.store.generation() or not present:
            # an index run was interrupted after committing rows but before writing FAISS: derive it now
            self.write_vectors(kind)
            stamp = self.manifest["vectors"]
        if kind in ONDISK_KINDS:  # never reads the raw vectors: the lists stay on disk, mmapped
            info = stamp["ondisk"]
            return OnDiskIndex(self.path, self.store, self.manifest["identity"]["dim"], info["nprobe"], info.get("rerank", 0))
        return VectorIndex.load(self.path, gpu=gpu)

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


def remove_index(path: Path) -> None:
    IndexFolder(path)  # refuses anything that is not an index folder
    shutil.rmtree(path)
