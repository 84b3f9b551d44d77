"""`bench speed --sections scale`: the on-disk index kinds and 1 vs 2 indexing processes, on real embeddings.

Corpus: WordNet 3.0 glosses (every synset, "lemmas: gloss", ~117k), then FOLDOC entries if more are
asked for, shuffled with a fixed seed; the last `n_queries` are held out as queries. The teacher's
embeddings are cached under $GENRETRIEVE_HOME/bench (in parts, so an interrupted run resumes).
Reported against exact flat search on the same float16 vectors: recall@10, build, train/add/
merge_ondisk time per number of blocks, single-query p50, size on disk, and RSS of a fresh process
that loads each index and searches (file pages the mmapped lists touch count toward its RSS).
Throughput: the same folder indexed as 1 and as 2 concurrent `--shard` processes, then merged.
Opt-in, never in the default run: the first run encodes ~100k texts (tens of minutes on a CPU).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..config import Config, load_config
from ..index.folder import FAISS_FILE, IndexFolder
from ..index.ondisk import ONDISK_KINDS, OnDiskIndex
from ..index.vectors import exact_top_k, ivf_params
from ..models.assets import home
from .metrics import ann_recall_at_k

PART = 4096  # texts per cached embedding part


def corpus_texts(n_total: int) -> tuple[list[str], dict]:
    """n_total distinct real texts: WordNet glosses, then FOLDOC first paragraphs; shuffled (seed 0)."""
    from .. import datasets

    texts = [f"{', '.join(w.replace('_', ' ') for w in s['words'])}: {s['gloss']}"
             for s in datasets.wordnet()["synsets"].values()]
    sources = {"wordnet glosses": len(texts)}
    if len(texts) < n_total:
        more = [" ".join(e["body"].split("\n\n")[1].split())[:600] for e in datasets.foldoc().values()
                if len(e["body"].split("\n\n")) > 1]
        sources["foldoc entries"] = len(more)
        texts += more
    texts = list(dict.fromkeys(t for t in texts if t.strip()))
    random.Random(0).shuffle(texts)
    if len(texts) < n_total:
        raise ValueError(f"only {len(texts)} distinct texts in WordNet + FOLDOC, {n_total} asked for")
    return texts[:n_total], sources


def cached_embeddings(encode, texts: list[str], fingerprint: str, log) -> tuple[np.ndarray, float | None]:
    """float16 embeddings of texts, cached per (model, texts); returns (vectors, texts/s or None if all cached)."""
    key = hashlib.sha256((fingerprint + "\n" + "\n".join(texts)).encode()).hexdigest()[:16]
    folder = home() / "bench" / f"scale-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    parts, seconds, encoded = [], 0.0, 0
    for p, start in enumerate(range(0, len(texts), PART)):
        path = folder / f"part-{p:04d}.npy"
        if not path.exists():
            log(f"scale: encoding {start}/{len(texts)} texts (cached in {folder})")
            t0 = time.perf_counter()
            vectors = np.asarray(encode(texts[start:start + PART]), np.float32).astype(np.float16)
            seconds, encoded = seconds + time.perf_counter() - t0, encoded + len(vectors)
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                np.save(handle, vectors)
        parts.append(np.load(path))
    return np.vstack(parts), (encoded / seconds if encoded else None)


def store_folder(path: Path, vectors: np.ndarray, texts: list[str], per_file: int = 1000) -> IndexFolder:
    """An index folder whose SQLite holds the vectors (as `index` would write them), 1,000 chunks per file."""
    folder = IndexFolder.create_or_open(path, {"dim": int(vectors.shape[1])}, Config())
    for f, start in enumerate(range(0, len(vectors), per_file)):
        chunks = [{"chunk_hash": hashlib.sha256(t.encode()).hexdigest(), "text": t, "vector": v}
                  for t, v in zip(texts[start:start + per_file], vectors[start:start + per_file])]
        folder.store.replace_file(f"part{f:04d}.txt", str(f), 0, 0.0, chunks)
    return folder


def p50_ms(index, queries: np.ndarray, k: int, n: int = 200) -> float:
    times = []
    for q in queries[:n]:
        start = time.perf_counter()
        index.search(q[None], k)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50))


def rss_probe() -> None:
    """Run as `python -c`: argv = index folder, queries.npy, k. Prints RSS (MiB) at each step as JSON."""
    path, queries, k = Path(sys.argv[1]), np.load(sys.argv[2]), int(sys.argv[3])

    def rss() -> dict:
        status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return {key: int(status[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}

    before = rss()
    index = IndexFolder(path, readonly=True).vector_index(gpu=False)  # as search loads it
    index.search(queries[:1], k)
    loaded = rss()
    index.search(queries, k)
    searched = rss()
    print(json.dumps({"before_mib": before["VmRSS"], "loaded_mib": loaded["VmRSS"], "searched_mib": searched["VmRSS"],
                      "peak_mib": searched["VmHWM"], "load_delta_mib": loaded["VmRSS"] - before["VmRSS"],
                      "search_delta_mib": searched["VmRSS"] - before["VmRSS"]}))


def memory(path: Path, queries_path: Path, k: int) -> dict:
    code = "from genretrieve.bench.speed_scale import rss_probe; rss_probe()"
    done = subprocess.run([sys.executable, "-c", code, str(path), str(queries_path), str(k)],
                          capture_output=True, text=True)
    if done.returncode or not os.path.exists("/proc/self/status"):
        return {"skipped": (done.stderr.strip()[-300:] or "no /proc/self/status (not Linux)")}
    return json.loads(done.stdout.strip().splitlines()[-1])


def index_kinds(vectors: np.ndarray, texts: list[str], qvecs: np.ndarray, work: Path, blocks: tuple[int, ...],
                k: int, log) -> dict:
    ids_all = np.arange(1, len(vectors) + 1)  # the store's AUTOINCREMENT ids for rows inserted in order
    exact_ids = exact_top_k(qvecs, k, [(ids_all[s:s + 65536], vectors[s:s + 65536])
                                       for s in range(0, len(vectors), 65536)])[1]
    np.save(work / "queries.npy", qvecs)
    nlist, nprobe = ivf_params(len(vectors))  # what every IVF kind below derives for itself
    log("scale: writing the vectors into SQLite")
    folder = store_folder(work / "index", vectors, texts)
    assert np.array_equal(folder.store.vector_ids(), ids_all)
    rows = {}
    for kind in ("flat", "ivf"):  # each kind as an index run writes it, and as search loads it
        log(f"scale: {kind} in RAM")
        start = time.perf_counter()
        folder.write_vectors(kind)
        build_s = time.perf_counter() - start
        index = folder.vector_index(gpu=False)
        assert index.nprobe == (nprobe if kind == "ivf" else None)
        rows[f"{kind} (in RAM)"] = {
            "build_s": build_s, "recall_at_10": ann_recall_at_k(index.search(qvecs, k)[1], exact_ids, k),
            "p50_ms": p50_ms(index, qvecs, k), "bytes": (folder.path / FAISS_FILE).stat().st_size,
            "memory": memory(folder.path, work / "queries.npy", k)}
    for kind in ONDISK_KINDS:
        builds = {}
        for b in blocks:
            log(f"scale: {kind} on disk, {b} block(s)")
            start = time.perf_counter()
            folder.write_vectors(kind, blocks=np.array_split(ids_all, b))
            info = folder.manifest["vectors"]["ondisk"]
            builds[str(b)] = {"build_s": time.perf_counter() - start,
                              **{key: info[key] for key in ("train_s", "add_s", "merge_s")}}
        index = folder.vector_index()
        rows[f"{kind} (on disk)"] = {
            "build_s": builds[str(blocks[0])]["build_s"], "builds": builds, "code_bytes": info["code_bytes"],
            "train_n": info["train_n"], "rerank": info["rerank"],
            "recall_at_10": ann_recall_at_k(index.search(qvecs, k)[1], exact_ids, k),
            "p50_ms": p50_ms(index, qvecs, k), "bytes": info["bytes"],
            "memory": memory(folder.path, work / "queries.npy", k)}
        if info["rerank"] > 1:  # what the re-scoring from SQLite buys: the same index, ranked by its codes alone
            codes = OnDiskIndex(folder.path, folder.store, vectors.shape[1], info["nprobe"], rerank=0)
            rows[f"{kind} (on disk, codes only)"] = {
                **{key: rows[f"{kind} (on disk)"][key] for key in ("build_s", "code_bytes", "bytes")},
                "rerank": 0, "recall_at_10": ann_recall_at_k(codes.search(qvecs, k)[1], exact_ids, k),
                "p50_ms": p50_ms(codes, qvecs, k), "memory": {"skipped": "the same files as the row above"}}
    folder.close()
    return {"nlist": nlist, "nprobe": nprobe, "kinds": rows}


def index_part() -> None:
    """Run as `python -c`: argv = docs, index dir, shard "I/N", config ('' for the default). Prints timings."""
    from ..index.build import build_index
    from ..index.ray_engine import resolve_factory
    from ..index.shards import parse_shard

    docs, index_dir, shard, config = sys.argv[1:5]
    cfg = load_config(config or None)
    start = time.perf_counter()
    encoder = resolve_factory(None)(cfg)  # $GENRETRIEVE_ENCODER_FACTORY or load_encoder, as Ray workers do
    load_s = time.perf_counter() - start
    summary = build_index(Path(docs), Path(index_dir), encoder, cfg, shard=parse_shard(shard))
    print(json.dumps({"load_s": load_s, "seconds": summary.seconds, "chunks_encoded": summary.chunks_encoded}))


def shard_processes(docs: Path, work: Path, workers: int, config_arg, run: int) -> dict:
    """`workers` concurrent processes, one shard each (models loaded per process), then merge."""
    from ..index.merge import merge_shards

    index_dir = work / f"index-{workers}w-{run}"
    code = "from genretrieve.bench.speed_scale import index_part; index_part()"
    config = str(config_arg) if isinstance(config_arg, (str, Path)) else ""
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", code, str(docs), str(index_dir), f"{i}/{workers}", config],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(workers)]
    parts = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"an indexing process failed:\n{err[-2000:]}")
        parts.append(json.loads(out.strip().splitlines()[-1]))
    parts_s = time.perf_counter() - start
    merged = merge_shards(index_dir)
    return {"wall_s": time.perf_counter() - start, "parts_wall_s": parts_s, "merge_s": merged.seconds,
            "indexing_s": max(p["seconds"] for p in parts), "load_s": max(p["load_s"] for p in parts),
            "chunks": merged.chunks, "encoded": sum(p["chunks_encoded"] for p in parts)}


def throughput(encoder, cfg, work: Path, n_chunks: int, workers: tuple[int, ...], repeats: int, config_arg,
               log) -> dict:
    from .speed_index import write_corpus

    _, corpus = write_corpus(work / "docs", n_chunks, encoder.backbone.tokenizer, cfg)
    rows = {}
    for w in workers:
        runs = []
        for r in range(repeats):
            log(f"scale: {corpus['chunks']} chunks with {w} indexing process(es), run {r + 1}/{repeats}")
            runs.append(shard_processes(work / "docs", work, w, config_arg, r))
        median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        rows[str(w)] = {**median, "runs": runs, "chunks_per_s_wall": median["chunks"] / median["wall_s"],
                        "chunks_per_s_indexing": median["encoded"] / median["indexing_s"]}
    first = rows[str(workers[0])]
    for row in rows.values():
        row["wall_speedup"] = first["wall_s"] / row["wall_s"]
        row["indexing_speedup"] = first["indexing_s"] / row["indexing_s"]
    return {"corpus": corpus, "doc_encoder": cfg.index.doc_encoder, "repeats": repeats, "workers": rows}


def scale_section(encoder, cfg, n: int = 100_000, n_queries: int = 1000, blocks: tuple[int, ...] = (1, 2, 4),
                  workers: tuple[int, ...] = (1, 2), worker_chunks: int = 300, repeats: int = 3, config_arg=None,
                  texts: list[str] | None = None, log=None, k: int = 10) -> dict:
    """`texts` (n + n_queries of them) replaces the WordNet/FOLDOC corpus (the tests pass their own)."""
    from .speed_index import gpu_unavailable

    log = log or (lambda msg: None)
    sources = {"given": len(texts)} if texts is not None else None
    if texts is None:
        log(f"scale: reading {n + n_queries} real texts (WordNet, FOLDOC)")
        texts, sources = corpus_texts(n + n_queries)
    base, held_out = texts[:n], texts[n:n + n_queries]
    vectors, rate = cached_embeddings(encoder.teacher.encode, base + held_out, encoder.teacher.fingerprint, log)
    report = {"corpus": {"vectors": len(base), "queries": len(held_out), "dim": int(vectors.shape[1]),
                         "sources": sources, "teacher": encoder.teacher.model_id,
                         "teacher_texts_per_s": rate, "embeddings": "cached" if rate is None else "encoded now"},
              "k": k, "gpu": f"not run: {gpu_unavailable()}" if gpu_unavailable() else "available, not used (CPU kinds)"}
    with tempfile.TemporaryDirectory(prefix="genretrieve-scale-") as tmp:
        work = Path(tmp)
        report.update(index_kinds(vectors[:n], base, vectors[n:].astype(np.float32), work, blocks, k, log))
        if workers:
            report["throughput"] = throughput(encoder, cfg, work, worker_chunks, workers, repeats, config_arg, log)
    return report


def scale_tables(r: dict, table) -> list:
    """The scale section as tables (`table` is speed.py's table builder)."""
    c, mem = r["corpus"], lambda m: ("skipped" if "skipped" in m else
                                     f"{m['load_delta_mib']:.0f} / {m['search_delta_mib']:.0f}")
    rows = [[kind, f"{row['recall_at_10']:.3f}", f"{row['p50_ms']:.2f}", f"{row['build_s']:.1f}",
             f"{row['bytes'] / 2**20:.1f}", mem(row["memory"])] for kind, row in r["kinds"].items()]
    rate = f" ({c['teacher_texts_per_s']:.0f} texts/s)" if c["teacher_texts_per_s"] else ""
    rerank = [f"{kind.split()[0]} re-scores {row['rerank']}x k candidates from SQLite"
              for kind, row in r["kinds"].items() if row.get("rerank", 0) > 1]
    tables = [table(f"scale: {c['vectors']} real {c['teacher']} vectors (dim {c['dim']}), {c['queries']} held-out "
                    f"queries", ["index", f"recall@{r['k']}", "1-query p50 ms", "build s", "MiB on disk",
                                 "RSS MiB: load / +search"], rows,
                    f"recall against exact flat search; nlist={r['nlist']}, nprobe={r['nprobe']} for every IVF; "
                    f"RSS = a fresh process's growth after loading, and after all {c['queries']} queries "
                    f"(mmapped pages it touched count); {'; '.join(rerank) or 'no re-scoring'}. "
                    f"Texts: {c['sources']}; embeddings {c['embeddings']}{rate}. GPU: {r['gpu']}")]
    rows = [[kind, b, f"{x['build_s']:.1f}", f"{x['train_s']:.1f}", f"{x['add_s']:.1f}", f"{x['merge_s']:.2f}"]
            for kind, row in r["kinds"].items() for b, x in row.get("builds", {}).items()]
    tables.append(table("scale: on-disk builds by number of blocks", ["kind", "blocks", "total s", "train s",
                                                                       "add s", "merge_ondisk s"], rows,
                        "train on a seeded sample, add each block to a copy of the trained index, merge_ondisk"))
    if "throughput" in r:
        t = r["throughput"]
        rows = [[w, f"{x['wall_s']:.1f}", f"{x['load_s']:.1f}", f"{x['indexing_s']:.1f}", f"{x['merge_s']:.1f}",
                 f"{x['chunks_per_s_wall']:.1f}", f"{x['wall_speedup']:.2f}x", f"{x['indexing_speedup']:.2f}x"]
                for w, x in t["workers"].items()]
        tables.append(table(f"scale: {t['corpus']['chunks']} chunks indexed by N concurrent --shard processes + merge",
                            ["processes", "wall s", "model load s", "indexing s", "merge s", "chunks/s (wall)",
                             "wall speedup", "indexing speedup"], rows,
                            f"medians of {t['repeats']} runs; doc encoder {t['doc_encoder']}; each process loads "
                            "the models; indexing s = the slowest part's own figure"))
    return tables
