"""`bench speed` sections index, search and faiss: the folder -> index -> search path, and FAISS kinds.

index:  a temp folder of ~N chunks of ~200 tokens (stdlib docstring passages, chunked as `index` does),
        indexed once per doc encoder (chunks/s), then re-indexed unchanged (median of 3).
search: per-mode latency of a warm Searcher on that index, the cold `genretrieve search` CLI
        (median of 3 runs) and peak memory.
faiss:  real teacher embeddings of distinct passages (never random vectors); build time, queries/s
        and recall@10 against exact flat search per VectorIndex kind, on CPU and, if FAISS can, GPU.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import re
import resource
import shlex
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ..config import load_config
from ..index.build import build_index
from ..index.chunking import chunk_document
from ..index.readers import read_file
from ..index.vectors import VectorIndex
from ..search import MODES, Searcher
from .metrics import ann_recall_at_k
from .texts import docstrings, passages, queries

TARGETS = {"teacher_chunks_per_s": 100.0, "gen_chunks_per_s": 12.0, "reindex_s": 2.0, "search_ms": 80.0,
           "cold_search_s": 5.0}
PASSAGES_PER_FILE = 20
PACKAGES = ("numpy", "networkx", "matplotlib", "sympy", "transformers", "torch")  # more real text, in this order
SKIP_DIRS = {"test", "tests", "testing", "idlelib", "turtledemo", "lib2to3", "site-packages", "dist-packages"}


def _ms(values) -> dict:
    return {"p50_ms": float(np.percentile(values, 50)), "p90_ms": float(np.percentile(values, 90))}


def mib(maxrss: int) -> float:
    return maxrss / (1024 ** 2 if sys.platform == "darwin" else 1024)  # ru_maxrss: bytes on macOS, else KiB


def write_corpus(folder: Path, n_chunks: int, tokenizer, cfg) -> tuple[list[str], dict]:
    """Files of <= 20 passages separated by blank lines, chunked as `index` will, until ~n_chunks chunks."""
    folder.mkdir(parents=True, exist_ok=True)
    pool = passages(n_chunks + PASSAGES_PER_FILE)  # a ~220-token passage yields at least one chunk
    chunks, used, files = [], 0, 0
    while len(chunks) < n_chunks and used < len(pool):
        for take in range(min(PASSAGES_PER_FILE, len(pool) - used), 0, -1):  # shrink only the last file
            path = folder / f"doc{files:04d}.txt"
            path.write_text("\n\n".join(pool[used:used + take]) + "\n")
            pieces = [c.text for doc in read_file(path, folder)
                      for c in chunk_document(doc, tokenizer, cfg.index.chunk_tokens, cfg.index.chunk_overlap)]
            if len(chunks) + len(pieces) <= n_chunks or take == 1:
                break
        if chunks and len(chunks) + len(pieces) > n_chunks:  # even one passage overshoots: stop short
            path.unlink()
            break
        chunks, used, files = chunks + pieces, used + take, files + 1
    tokens = [len(ids) for ids in tokenizer(chunks, add_special_tokens=False)["input_ids"]]
    return chunks, {"files": files, "passages": used, "chunks": len(chunks),
                    "chunk_tokens_mean": float(np.mean(tokens)), "chunk_tokens_max": int(max(tokens))}


def index_section(encoder, cfg, work: Path, n_chunks: int, log) -> tuple[dict, list[str]]:
    texts, corpus = write_corpus(work / "docs", n_chunks, encoder.backbone.tokenizer, cfg)
    model = getattr(encoder.backbone, "model", None)  # None for the tests' fake encoder
    dtype = str(next(model.parameters()).dtype).replace("torch.", "") if model else None
    report = {"corpus": corpus, "dtype": dtype, "encoders": {}}
    encoder.teacher.encode(texts[:2]), encoder.encode_documents(texts[:2])  # warm-up: first-call kernel setup
    for name in ("teacher", "gen"):
        log(f"index: {corpus['chunks']} chunks with the {name} document encoder")
        c, index_dir = load_config(cfg, index__doc_encoder=name), work / f"index-{name}"
        first = build_index(work / "docs", index_dir, encoder, c)
        again = [build_index(work / "docs", index_dir, encoder, c) for _ in range(3)]
        reindex = statistics.median(s.seconds for s in again)
        target = TARGETS[f"{name}_chunks_per_s"]
        report["encoders"][name] = {
            "chunks": first.chunks_total, "chunks_encoded": first.chunks_encoded, "seconds": first.seconds,
            "chunks_per_s": first.chunks_per_s, "target_chunks_per_s": target, "pass": first.chunks_per_s >= target,
            "reindex_s": reindex, "reindex_encoded": max(s.chunks_encoded for s in again),
            "reindex_target_s": TARGETS["reindex_s"], "reindex_pass": reindex <= TARGETS["reindex_s"]}
    e = report["encoders"]
    report["gen_vs_teacher_throughput"] = e["gen"]["chunks_per_s"] / max(e["teacher"]["chunks_per_s"], 1e-9)
    return report, texts


def genretrieve_command() -> list[str]:
    script = Path(sys.executable).parent / "genretrieve"  # the console script of this environment
    return [str(script)] if script.exists() else [sys.executable, "-c", "from genretrieve.cli import app; app()"]


# Runs the command and reports its wall time and peak RSS. Measured from this small process because a
# child's ru_maxrss counts the RSS of the process that forked it, here the whole benchmark.
_MEASURE = ("import json, resource, subprocess, sys, time\nstart = time.perf_counter()\n"
            "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "print(json.dumps({'s': time.perf_counter() - start, 'rc': done.returncode, 'err': done.stderr[-2000:],"
            " 'maxrss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")


def cold_search(index_dir: Path, query: str, config_arg, runs: int, extra: tuple) -> dict:
    args = ["search", query, "--index", str(index_dir), "--json", *extra]
    args += ["--config", str(config_arg)] if isinstance(config_arg, (str, Path)) else []
    measured = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", _MEASURE, *genretrieve_command(), *args],
                              capture_output=True, text=True, check=True)
        measured.append(json.loads(done.stdout))
        if measured[-1]["rc"]:
            raise RuntimeError(f"cold search failed: genretrieve {' '.join(args)}\n{measured[-1]['err']}")
    median, shown = statistics.median(m["s"] for m in measured), shlex.join(args[2:]).replace(str(index_dir), "INDEX")
    return {"command": f"genretrieve search {json.dumps(query)} {shown}", "runs": runs,
            "times_s": [m["s"] for m in measured], "median_s": median, "target_s": TARGETS["cold_search_s"],
            "pass": median <= TARGETS["cold_search_s"], "peak_rss_mib": mib(max(m["maxrss"] for m in measured))}


def search_section(encoder, cfg, index_dir: Path, n_queries: int, config_arg, cold_runs: int, cold_args: tuple,
                   log) -> dict:
    qs, k, safety = queries(n_queries), cfg.search.k, cfg.search.safety
    searcher = Searcher(index_dir, encoder, cfg)
    modes, runs = {}, [(mode, mode, safety) for mode in MODES]
    runs += [("gen, safety off", "gen", "off")] if safety != "off" else []  # what the probe costs
    try:
        for label, mode, safe in runs:
            log(f"search: {len(qs)} single queries, {label}")
            searcher.search(qs[:1], k, mode, safety=safe)  # warm-up: FAISS load, first SQL, first forward
            lat = []
            for q in qs:
                start = time.perf_counter()
                searcher.search([q], k, mode, safety=safe)
                lat.append((time.perf_counter() - start) * 1000)
            modes[label] = {**_ms(lat), "pass": float(np.percentile(lat, 50)) <= TARGETS["search_ms"]}
    finally:
        searcher.folder.close()
    for row in modes.values():
        row["vs_keyword_p50"] = row["p50_ms"] / max(modes["keyword"]["p50_ms"], 1e-9)
    log(f"search: cold CLI x{cold_runs}")
    return {"index_doc_encoder": cfg.index.doc_encoder, "k": k, "safety": safety, "queries": len(qs),
            "target_ms": TARGETS["search_ms"], "modes": modes,
            "cold": cold_search(index_dir, qs[0], config_arg, cold_runs, cold_args),
            "process_peak_rss_mib": mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)}


def _py_docstrings(root: Path):
    for path in sorted(root.rglob("*.py")):
        if SKIP_DIRS & set(path.relative_to(root).parts):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes in old files
                tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 200:
                    yield re.sub(r"\s+", " ", doc)


def text_sources():
    """Real text that ships with Python and this environment, read lazily, in a fixed order."""
    if importlib.util.find_spec("pydoc_data"):  # the language reference's prose, minus heading underlines
        from pydoc_data.topics import topics
        yield "python help topics", (re.sub(r"\s+", " ", re.sub(r"([*=~^-])\1{2,}", " ", topics[key]))
                                     for key in sorted(topics))
    yield "stdlib docstrings", _py_docstrings(Path(sysconfig.get_paths()["stdlib"]))
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec and spec.origin:
            yield f"{name} docstrings", _py_docstrings(Path(spec.origin).parent)


def real_passages(n: int, n_heldout: int, words: int, stride: int, exclude=()) -> tuple[list[str], list[str], dict]:
    """n windows of `words` words, `stride` apart, then the first sentences of n_heldout further docstrings."""
    need = (n - 1) * stride + words if n else 0
    stream, seen, heldout, sources = [], set(exclude), [], {}
    for source, docs in text_sources():
        for doc in docs:
            if doc in seen:
                continue
            seen.add(doc)
            if len(stream) < need:
                stream += doc.split()
                sources[source] = sources.get(source, 0) + len(doc.split())
            elif len(heldout) < n_heldout:
                first = doc.split(". ")[0].strip()[:200]
                heldout += [first] if len(first.split()) >= 4 else []
            else:
                break
        if len(stream) >= need and len(heldout) >= n_heldout:
            break
    windows = [" ".join(stream[i * stride:i * stride + words]) for i in range(n)]
    return [w for w in windows if w], heldout, sources


def bench_kind(kind: str, vectors: np.ndarray, qvecs: np.ndarray, k: int, exact_ids, gpu: bool,
               n_single: int = 200) -> tuple[dict, np.ndarray]:
    start = time.perf_counter()
    index = VectorIndex.build(np.arange(len(vectors)), vectors, kind, gpu=gpu)
    row = {"build_s": time.perf_counter() - start}
    if gpu:
        start = time.perf_counter()
        index.search(qvecs[:1], k)  # copies the index to the GPU
        row["to_gpu_s"] = time.perf_counter() - start
        if not index.on_gpu:
            return {"skipped": "the copy to the GPU failed; searched on CPU"}, None
    batch = []
    for _ in range(3):
        start = time.perf_counter()
        _, found = index.search(qvecs, k)
        batch.append(time.perf_counter() - start)
    single = []
    for q in qvecs[:n_single]:
        start = time.perf_counter()
        index.search(q[None], k)
        single.append((time.perf_counter() - start) * 1000)
    row.update({"batch_qps": len(qvecs) / statistics.median(batch), "single_qps": 1000 * len(single) / sum(single),
                **{f"single_{key}": v for key, v in _ms(single).items()},
                "recall_at_10": ann_recall_at_k(found, found if exact_ids is None else exact_ids, k)})
    row.update(index.params())
    if not gpu:
        with tempfile.TemporaryDirectory() as tmp:
            index.save(Path(tmp) / "vectors.faiss")
            row["faiss_bytes"] = (Path(tmp) / "vectors.faiss").stat().st_size
    return row, found


def gpu_unavailable() -> str | None:
    import faiss
    import torch

    reasons = [] if torch.cuda.is_available() else ["no CUDA GPU"]
    if not hasattr(faiss, "StandardGpuResources"):
        reasons.append(f"faiss {faiss.__version__} is built without GPU support")
    elif faiss.get_num_gpus() == 0:
        reasons.append("faiss sees no GPU")
    return "; ".join(reasons) or None


def faiss_section(encoder, cfg, base_texts: list[str], n: int, n_queries: int, log, k: int = 10) -> dict:
    words = 150
    stride = max(1, round(words * (1 - cfg.index.chunk_overlap)))  # windows overlap like chunks do
    log(f"faiss: reading real text for {n} passages")
    want = max(0, n - len(base_texts)) * 51 // 50 + 1  # 2% spare: a few windows repeat others exactly
    extra, heldout, sources = real_passages(want, n_queries, words, stride, set(docstrings()))
    corpus = list(dict.fromkeys(base_texts + extra))[:n]  # exact duplicates would only add ties
    qtexts = (queries(n_queries) + heldout)[:n_queries]
    start, blocks = time.perf_counter(), []
    for at in range(0, len(corpus), 1024):
        log(f"faiss: teacher-encoding {at}/{len(corpus)}")
        blocks.append(encoder.teacher.encode(corpus[at:at + 1024]))
    encode_s = time.perf_counter() - start
    vectors, qvecs = np.vstack(blocks).astype(np.float32), encoder.teacher.encode(qtexts).astype(np.float32)
    report = {"corpus": {"vectors": len(corpus), "dim": int(vectors.shape[1]), "from_index_section": len(base_texts),
                         "words_per_passage": words, "stride_words": stride, "words_by_source": sources,
                         "teacher_passages_per_s": len(corpus) / encode_s},
              "queries": len(qtexts), "k": k, "kinds": {}}
    exact = None
    for kind in ("flat", "ivf", "hnsw"):
        log(f"faiss: {kind} (cpu)")
        report["kinds"][f"{kind} (cpu)"], found = bench_kind(kind, vectors, qvecs, k, exact, gpu=False)
        exact = found if exact is None else exact  # flat is exact: every recall is against it
    reason = gpu_unavailable()
    if reason:
        report["gpu"] = f"not run: {reason}"
    else:
        for kind in ("flat", "ivf"):
            log(f"faiss: {kind} (gpu)")
            report["kinds"][f"{kind} (gpu)"], _ = bench_kind(kind, vectors, qvecs, k, exact, gpu=True)
        report["gpu"] = "run"
    flat = report["kinds"]["flat (cpu)"]
    for row in report["kinds"].values():
        if "batch_qps" in row:
            row["batch_vs_flat_cpu"] = row["batch_qps"] / flat["batch_qps"]
            row["single_vs_flat_cpu"] = row["single_qps"] / flat["single_qps"]
    return report
