"""`genretrieve index --engine ray`: reading/chunking and encoding as a Ray Data pipeline.

Files fan out to Ray tasks that read and chunk them; a pool of encoder actors (a callable class,
so each worker loads the model once, through an importable factory such as
`genretrieve.models.load:load_encoder`) encodes batches sized for its device, on GPUs when asked.
Rows stream back in order (preserve_order), so the driver commits them exactly as the
single-process build does and chunk ids match; it writes into a staged copy of the index that
is swapped in only when every batch succeeded. Failed batches are retried by Ray (MAX_RETRIES).
Concessions: the driver loads the models once too (for the identity and the tokenizer), hashes
the changed files itself, and re-encodes chunk texts the index already holds under another file.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..config import Config, IndexConfig
from ..errors import GenretrieveError, UsageError
from .build import ENCODE_BATCH, IndexSummary, Producer, Report, Todo, build_index, chunk_file, document_encoder
from .folder import index_identity
from .readers import UnreadableFile

DEFAULT_FACTORY = "genretrieve.models.load:load_encoder"
FACTORY_ENV = "GENRETRIEVE_ENCODER_FACTORY"  # tests point workers at a fake encoder with it
MAX_RETRIES = 3  # per batch; Ray Data's default for actors is to retry forever, which hides a real bug
INSTALL = "--engine ray needs Ray, an optional extra: pip install 'genretrieve[ray]' (or pip install 'ray[data]')"


@dataclass
class RayOptions:
    address: str | None = None  # None: join RAY_ADDRESS if set, else start a local Ray
    workers: int | None = None  # encoder actors; default: one per GPU (gpus_per_worker each), else 1
    gpus_per_worker: float | None = None  # default: 1 when the cluster has GPUs, else 0
    batch_size: int | None = None  # chunks per Ray batch; default sized for the device
    factory: str | None = None  # "module:callable" taking a Config; default $GENRETRIEVE_ENCODER_FACTORY or load_encoder


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401  (the [data] extra: pyarrow, pandas)
    except ImportError as exc:
        raise UsageError(INSTALL) from exc
    return ray


def resolve_factory(spec: str | None):
    spec = spec or os.environ.get(FACTORY_ENV) or DEFAULT_FACTORY
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name or "load_encoder")
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"encoder factory {spec!r} cannot be imported ({exc}); give it as module:callable") from exc


def read_chunks(row: dict, root: str, tokenizer, index: IndexConfig, no_chunk: bool) -> list[dict]:
    """One file -> its chunk rows; a failed or empty file is one marker row (seq -1) so the driver hears of it."""
    base = {"file": row["file"], "seq": -1, "text": "", "hash": "", "chunk": "", "error": ""}
    try:
        chunks = chunk_file(Path(row["path"]), Path(root), tokenizer, index, no_chunk)
    except UnreadableFile as exc:
        return [{**base, "error": str(exc) or "unreadable"}]
    rows = [{**base, "seq": seq, "text": c.pop("text"), "hash": c["chunk_hash"], "chunk": json.dumps(c)}
            for seq, c in enumerate(chunks)]
    return rows or [base]


class EncodeChunks:
    """A Ray actor's state: the encoder, loaded once per worker, checked against the driver's identity."""

    def __init__(self, factory: str, config: Config, identity: dict, no_chunk: bool):
        encoder = resolve_factory(factory)(config)
        found = index_identity(encoder, config, no_chunk)
        if found != identity:  # e.g. another model file on this node: its vectors would not be comparable
            raise GenretrieveError(f"a Ray worker loaded other models than the driver: {found} vs {identity}")
        self.encode = document_encoder(encoder, config.index.doc_encoder)

    def __call__(self, batch: dict) -> dict:
        keys = [h if seq >= 0 else None for h, seq in zip(batch["hash"], batch["seq"])]  # None: a marker row
        texts = {h: t for h, t in zip(keys, batch["text"]) if h is not None}  # a repeated text is encoded once
        vectors = dict(zip(texts, self.encode(list(texts.values())).astype(np.float16))) if texts else {}
        firsts = {h: i for i, h in reversed(list(enumerate(keys))) if h is not None}
        batch["fresh"] = np.array([h is not None and firsts[h] == i for i, h in enumerate(keys)], dtype=bool)
        batch["vector"] = np.array([b"" if h is None else vectors[h].tobytes() for h in keys], dtype=object)
        return batch


def plan_resources(ray, options: RayOptions) -> tuple[int, float, float]:
    """(workers, gpus per worker, cpus per worker) for this cluster."""
    resources = ray.cluster_resources()
    gpus, cpus = resources.get("GPU", 0), resources.get("CPU", 1)
    per_gpu = options.gpus_per_worker if options.gpus_per_worker is not None else (1.0 if gpus else 0.0)
    if per_gpu > gpus:
        raise UsageError(f"--gpus-per-worker {per_gpu:g}, but the Ray cluster has {gpus:g} GPUs")
    workers = options.workers or (max(1, int(gpus // per_gpu)) if per_gpu else 1)
    # leave a CPU for the read/chunk tasks, or a small cluster deadlocks with every CPU held by an actor
    per_cpu = max(0.1, min(1.0, (cpus - 1) / workers)) if cpus > 1 else 0.5
    return workers, per_gpu, per_cpu


def ray_producer(root: Path, config: Config, no_chunk: bool, tokenizer, identity: dict,
                 options: RayOptions) -> Producer:
    def produce(todo: list[Todo], summary: IndexSummary, report: Report):
        if not todo:
            return
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            ray.init(address=options.address, include_dashboard=False, logging_level="WARNING")
        try:
            yield from _run(ray, todo, summary, report)
        except GenretrieveError:
            raise
        except Exception as exc:  # a RayTaskError after the retries, a lost node...: the live index is untouched
            raise GenretrieveError(f"the Ray pipeline failed (after up to {MAX_RETRIES} retries per batch), "
                                   f"so the index was left as it was: {exc}") from exc
        finally:
            if started:
                ray.shutdown()

    def _run(ray, todo, summary, report):
        workers, per_gpu, per_cpu = plan_resources(ray, options)
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # the commit order fixes the chunk ids
        context.enable_progress_bars = False  # progress goes through `report`, to the CLI's bar
        context.actor_task_retry_on_errors = True  # application errors too, bounded by max_task_retries
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # its INFO lines would interleave with our bar
        workers = min(workers, len(todo))  # more actors than files would idle (and Ray warns)
        items = [{"file": i, "path": str(path)} for i, (path, *_) in enumerate(todo)]
        batch_size = options.batch_size or config.model.batch_size * (16 if per_gpu else 2)  # GPU: fed; CPU: spread
        with warnings.catch_warnings():  # Ray 2.60 deprecates ray_remote_args but names no other way to set retries
            warnings.filterwarnings("ignore", message=".*ray_remote_args. is deprecated")
            ds = (ray.data.from_items(items, override_num_blocks=min(len(items), 4 * workers + 4))
                  .flat_map(read_chunks, fn_kwargs={"root": str(root), "tokenizer": tokenizer, "index": config.index,
                                                    "no_chunk": no_chunk},
                            max_retries=MAX_RETRIES, retry_exceptions=True)
                  .map_batches(EncodeChunks, fn_constructor_kwargs={"factory": options.factory, "config": config,
                                                                    "identity": identity, "no_chunk": no_chunk},
                               batch_size=batch_size, batch_format="numpy",
                               compute=ray.data.ActorPoolStrategy(size=workers), num_gpus=per_gpu, num_cpus=per_cpu,
                               max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES))
        yield from _files_in_order(ds.iter_batches(batch_size=None, batch_format="numpy"), todo, summary, report)

    return produce


def _files_in_order(batches, todo: list[Todo], summary: IndexSummary, report: Report):
    """Group the ordered chunk rows back into files and hand them over in commits of about ENCODE_BATCH chunks."""
    ready, current, chunks, error, done = [], None, [], "", 0

    def finish():
        nonlocal done
        _, rel, digest, stat = todo[current]
        if error:
            summary.files_failed.append({"path": rel, "error": error})
        else:
            ready.append((rel, digest, stat, chunks))
        done += 1
        report("encoding", done, len(todo))

    for batch in batches:
        for file, seq, text, chunk, err, vector, fresh in zip(batch["file"], batch["seq"], batch["text"], batch["chunk"],
                                                               batch["error"], batch["vector"], batch["fresh"]):
            if file != current:
                if current is not None:
                    finish()
                current, chunks, error = int(file), [], ""
            if err:
                error = str(err)
            elif seq >= 0:
                chunks.append({**json.loads(chunk), "text": str(text), "vector": np.frombuffer(vector, np.float16)})
                summary.chunks_encoded += bool(fresh)
        if sum(len(c) for *_, c in ready) >= ENCODE_BATCH:
            yield ready
            ready = []
    if current is not None:
        finish()
    if done != len(todo):  # rows lost without an error would silently drop files: refuse instead
        raise GenretrieveError(f"the Ray pipeline returned {done} of {len(todo)} files; the index was left as it was")
    if ready:
        yield ready


def build_index_ray(root: Path, index_dir: Path, config: Config, options: RayOptions | None = None,
                    rebuild: bool = False, no_chunk: bool = False, report: Report | None = None) -> IndexSummary:
    options = options or RayOptions()
    import_ray()  # say how to install Ray before loading any model
    # resolved once here, so the workers get the same factory even where the env var is not set
    options = replace(options, factory=options.factory or os.environ.get(FACTORY_ENV) or DEFAULT_FACTORY)
    encoder = resolve_factory(options.factory)(config)
    identity = index_identity(encoder, config, no_chunk)
    produce = ray_producer(Path(root), config, no_chunk, encoder.backbone.tokenizer, identity, options)
    return build_index(root, index_dir, encoder, config, rebuild=rebuild, no_chunk=no_chunk, report=report,
                       produce=produce, staged=True)
