"""On-disk IVF kinds (ivf-sq8, ivf-pq): real FAISS and real SQLite, vectors written straight into a store or
indexed through the CLI with the fake encoder."""
import json
import shutil

import faiss
import numpy as np
import pytest

from genretrieve.config import Config
from genretrieve.index import ondisk
from genretrieve.index.folder import IndexFolder
from genretrieve.index.ondisk import INDEX_FILE, OnDiskIndex
from genretrieve.index.store import Store
from genretrieve.bench.metrics import ann_recall_at_k

from .scale_helpers import QUERIES, more_docs
from .test_shards import build_shards, ok, run, search
from .test_vectors import DIM, clustered, exact, normalise


@pytest.fixture(scope="module")
def data():
    x, labels = clustered(3000)
    rng = np.random.default_rng(1)
    q = normalise(x[rng.choice(len(x), 50, replace=False)] + 0.2 * rng.standard_normal((50, DIM)))
    return x, labels, q


def make_folder(path, x, files: int = 30) -> tuple[IndexFolder, np.ndarray]:
    """An index folder whose meta.sqlite holds `x` as float16 chunk vectors, spread over `files` files."""
    folder = IndexFolder.create_or_open(path, {"dim": DIM}, Config())
    for f, rows in enumerate(np.array_split(np.arange(len(x)), files)):
        chunks = [{"chunk_hash": f"{f}-{r}", "text": f"chunk {r}", "vector": x[r]} for r in rows]
        folder.store.replace_file(f"dir{f % 3}/file{f:03d}.txt", f"sha{f}", 1, 0.0, chunks)
    return folder, folder.store.vector_ids()


def test_sq8_with_every_list_probed_matches_exact_search(data, tmp_path):
    x, _, q = data
    folder, ids = make_folder(tmp_path / "ix", x)
    folder.write_vectors("ivf-sq8")
    info = folder.manifest["vectors"]["ondisk"]
    assert info["count"] == len(x) and info["code_bytes"] == DIM  # one byte per dimension
    ref = exact(ids, x, q, 10)[1]
    _, got = OnDiskIndex(folder.path, folder.store, DIM, nprobe=info["nlist"]).search(q, 10)
    assert ann_recall_at_k(got, ref, 10) >= 0.95  # only SQ8 rounding differs from exact
    _, default = folder.vector_index().search(q, 10)
    assert ann_recall_at_k(default, ref, 10) >= 0.8  # nprobe = nlist // 8 by default
    folder.write_vectors("ivf-pq")  # d/8 = 4 bytes per vector: much coarser, still far better than chance
    assert folder.manifest["vectors"]["ondisk"]["code_bytes"] == DIM // 8
    _, codes = OnDiskIndex(folder.path, folder.store, DIM, nprobe=info["nlist"]).search(q, 10)
    assert 0.25 <= ann_recall_at_k(codes, ref, 10) < ann_recall_at_k(got, ref, 10)
    scores, rescored = OnDiskIndex(folder.path, folder.store, DIM, nprobe=info["nlist"], rerank=10).search(q, 10)
    assert ann_recall_at_k(rescored, ref, 10) >= ann_recall_at_k(codes, ref, 10) + 0.1  # 10x k candidates, exact scores
    x16 = x.astype(np.float16).astype(np.float32)[np.searchsorted(ids, rescored)]  # (queries, k, dim)
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", q, x16), atol=1e-5)  # the stored vectors' scores


def test_blocks_give_the_same_index_as_one_go(data, tmp_path):
    x, _, q = data
    whole, ids = make_folder(tmp_path / "whole", x)
    parts, _ = make_folder(tmp_path / "parts", x)
    whole.write_vectors("ivf-sq8")
    rng = np.random.default_rng(2)
    parts.write_vectors("ivf-sq8", blocks=np.array_split(rng.permutation(ids), 4))  # interleaved, like shards
    assert (whole.manifest["vectors"]["ondisk"]["blocks"], parts.manifest["vectors"]["ondisk"]["blocks"]) == (1, 4)
    s1, i1 = whole.vector_index().search(q, 10)
    s2, i2 = parts.vector_index().search(q, 10)
    np.testing.assert_allclose(s1, s2, atol=1e-5)
    assert (i1 == i2).mean() > 0.98  # ties may swap places between lists filled in another order
    with pytest.raises(ValueError, match="exactly once"):
        parts.write_vectors("ivf-sq8", blocks=[ids[:10], ids[5:]])


@pytest.mark.parametrize("exact_max", [20_000, 0])  # vectors read from SQLite, and the IVF id selector
def test_allowed_ids_filter_before_ranking(data, tmp_path, monkeypatch, exact_max):
    x, labels, _ = data
    monkeypatch.setattr(ondisk, "EXACT_FILTER_MAX", exact_max)
    folder, ids = make_folder(tmp_path / "ix", x)
    folder.write_vectors("ivf-sq8")
    index = folder.vector_index()
    query = x[labels == 0][:1]
    centre0 = x[labels == 0].mean(0)
    far = int(np.argmin([x[labels == c].mean(0) @ centre0 for c in range(50)]))
    allowed = ids[labels == far]
    scores, got = index.search(query, 10, allowed_ids=allowed)
    assert (got >= 0).all() and np.isin(got, allowed).all()
    assert ann_recall_at_k(got, exact(ids[labels == far], x[labels == far], query, 10)[1], 10) >= 0.9
    assert np.all(np.diff(scores[0]) <= 0)
    scores, got = index.search(query, 5, allowed_ids=allowed[:3])  # fewer allowed than k: padded honestly
    assert set(got[0, :3]) == set(allowed[:3]) and (got[0, 3:] == -1).all() and np.isneginf(scores[0, 3:]).all()


def test_few_hits_in_the_probed_lists_fall_back_to_exact_search_over_sqlite(data, tmp_path, monkeypatch):
    x, labels, _ = data
    monkeypatch.setattr(ondisk, "EXACT_FILTER_MAX", 0)
    folder, ids = make_folder(tmp_path / "ix", x)
    folder.write_vectors("ivf-sq8")
    index = OnDiskIndex(folder.path, folder.store, DIM, nprobe=1)  # one list: the far cluster is not in it
    query = x[labels == 0][:1]
    centre0 = x[labels == 0].mean(0)
    far = int(np.argmin([x[labels == c].mean(0) @ centre0 for c in range(50)]))
    allowed = ids[labels == far]
    scores, got = index.search(query, 10, allowed_ids=allowed)
    ref_scores, ref = exact(ids[labels == far], x[labels == far], query, 10)
    assert list(got[0]) == list(ref[0])  # the exact answer, from float16 vectors read from SQLite
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)


def test_search_never_loads_the_raw_vectors(data, tmp_path, monkeypatch):
    x, _, q = data
    folder, _ = make_folder(tmp_path / "ix", x)
    folder.write_vectors("flat")
    assert (folder.path / "vectors.faiss").exists()
    monkeypatch.setattr(Store, "all_vectors", lambda *a, **k: pytest.fail("search loaded the raw vectors"))
    assert len(IndexFolder(folder.path, readonly=True).vector_index(gpu=False)) == len(x)  # in RAM: FAISS alone
    monkeypatch.undo()
    folder.write_vectors("ivf-sq8")  # switching kind removes the in-RAM kind's files
    assert not (folder.path / "vectors.npz").exists() and not (folder.path / "vectors.faiss").exists()

    def refuse(*args, **kwargs):
        raise AssertionError("the raw vectors were loaded")

    monkeypatch.setattr(Store, "all_vectors", refuse)
    monkeypatch.setattr(np, "load", refuse)
    reopened = IndexFolder(folder.path)
    index = reopened.vector_index()
    assert isinstance(index, OnDiskIndex) and len(index) == len(x)
    assert (index.search(q, 10)[1] >= 0).all()
    monkeypatch.undo()
    reopened.write_vectors("flat")
    assert not (folder.path / INDEX_FILE).exists() and not list(folder.path.glob("*.ivfdata"))


def test_an_interrupted_build_leaves_the_previous_index_searchable(data, tmp_path, monkeypatch):
    x, _, q = data
    folder, _ = make_folder(tmp_path / "ix", x)
    folder.write_vectors("ivf-sq8")
    before = folder.vector_index().search(q, 10)
    files = {p.name: p.read_bytes() for p in folder.path.iterdir() if p.is_file() and p.name != "meta.sqlite"}
    real = ondisk.merge_ondisk

    def merge_then_fail(*args, **kwargs):
        real(*args, **kwargs)  # the new .ivfdata is fully written ...
        raise KeyboardInterrupt  # ... and the run is stopped before the index file is swapped in

    monkeypatch.setattr(ondisk, "merge_ondisk", merge_then_fail)
    with pytest.raises(KeyboardInterrupt):
        IndexFolder(folder.path).write_vectors("ivf-pq", blocks=np.array_split(folder.store.vector_ids(), 3))
    after = {p.name: p.read_bytes() for p in folder.path.iterdir() if p.is_file() and p.name != "meta.sqlite"}
    assert after == files  # no temp file, no half-built .ivfdata, the same index file
    assert not [p for p in folder.path.iterdir() if p.is_dir()]  # the block files are gone too
    again = IndexFolder(folder.path).vector_index().search(q, 10)
    np.testing.assert_array_equal(before[1], again[1])
    (folder.path / ".ondisk-build.99999").mkdir()  # what a killed (not excepted) build leaves ...
    (folder.path / "vectors.0123456789ab.ivfdata").write_bytes(b"half")
    monkeypatch.undo()
    IndexFolder(folder.path).write_vectors("ivf-sq8")  # ... is cleared by the next build that completes
    assert sorted(p.name for p in folder.path.iterdir() if p.name not in ("meta.sqlite", "manifest.json")) == \
        sorted([INDEX_FILE, IndexFolder(folder.path).manifest["vectors"]["ondisk"]["ivfdata"]])


def test_cli_index_and_merge_on_disk(fake, tmp_path, monkeypatch):
    docs = more_docs(tmp_path / "docs")
    config = tmp_path / "small.yaml"
    config.write_text("index:\n  chunk_tokens: 8\n  chunk_overlap: 0.25\n")
    ok("index", docs, "--index", tmp_path / "whole", "--config", config, "--kind", "ivf-sq8", "--json")
    build_shards(docs, tmp_path / "parts", 3, config)
    merged = ok("merge", tmp_path / "parts", "--kind", "ivf-sq8", "--json")
    assert merged["vectors"]["kind"] == "ivf-sq8" and merged["vectors"]["ondisk"]["blocks"] == 3
    for folder in ("whole", "parts"):
        manifest = json.loads((tmp_path / folder / "manifest.json").read_text())
        assert manifest["vectors"]["kind"] == "ivf-sq8" and not (tmp_path / folder / "vectors.npz").exists()
    for query in QUERIES:
        for extra in ((), ("--path", "guide/**"), ("--mode", "hybrid")):
            hits = search(tmp_path / "parts", query, *extra)
            assert_same_ranking(hits, search(tmp_path / "whole", query, *extra))
            assert hits and (not extra or extra[0] != "--path" or all(h["path"].startswith("guide/") for h in hits))
    flat = tmp_path / "flat"
    ok("index", docs, "--index", flat, "--config", config, "--kind", "flat", "--json")
    exact_ids = [[h["chunk_id"] for h in search(flat, query)] for query in QUERIES]
    found = [[h["chunk_id"] for h in search(tmp_path / "whole", query)] for query in QUERIES]
    assert ann_recall_at_k(np.array(found), np.array(exact_ids), 5) >= 0.8  # every list probed at this size

    before = search(tmp_path / "parts", "ocean tides")
    monkeypatch.setattr(ondisk, "merge_ondisk", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full")))
    assert run("merge", tmp_path / "parts", "--kind", "ivf-pq").exit_code != 0
    assert search(tmp_path / "parts", "ocean tides") == before  # the staged merge never replaced it
    assert (tmp_path / "parts" / "shards" / "0-of-3").is_dir()
    result = run("index", docs, "--index", tmp_path / "other", "--kind", "ivf-foo")
    assert result.exit_code == 2 and "ivf-sq8" in result.output and not (tmp_path / "other").exists()


def assert_same_ranking(a: list[dict], b: list[dict]) -> None:
    """Same scores, same hits; only among ties at the k-th score may the cut keep other chunks."""
    assert [round(h["score"], 5) for h in a] == [round(h["score"], 5) for h in b]
    last = round(a[-1]["score"], 5) if a else None
    assert [h["chunk_id"] for h in a if round(h["score"], 5) != last] == \
        [h["chunk_id"] for h in b if round(h["score"], 5) != last]


def test_an_empty_store_gives_an_empty_index(tmp_path):
    folder = IndexFolder.create_or_open(tmp_path / "ix", {"dim": DIM}, Config())
    folder.write_vectors("ivf-sq8")
    scores, ids = folder.vector_index().search(np.ones((1, DIM), np.float32), 3)
    assert (ids == -1).all() and np.isneginf(scores).all()
    assert faiss.read_index(str(tmp_path / "ix" / INDEX_FILE), faiss.IO_FLAG_ONDISK_SAME_DIR).ntotal == 0
    shutil.rmtree(tmp_path / "ix")
