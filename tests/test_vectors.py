"""The in-RAM FAISS kinds: built once from the vectors, saved, loaded as they are; and, through an index folder,
derived from SQLite and checked against the manifest (a stale or damaged file names the command that fixes it)."""
import json

import faiss
import numpy as np
import pytest

from genretrieve.bench.metrics import ann_recall_at_k
from genretrieve.config import Config
from genretrieve.errors import DamagedIndex
from genretrieve.index import vectors
from genretrieve.index.folder import FAISS_FILE, IndexFolder
from genretrieve.index.vectors import VectorIndex, array_source, ivf_params

DIM = 32


def normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, n_clusters: int = 50, seed: int = 0):
    """Embedding-like data: points around 50 centres (uniform gaussians make ANN look bad)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, DIM))
    labels = rng.integers(0, n_clusters, n)
    x = normalise(centres[labels] + 0.35 * rng.standard_normal((n, DIM)))
    return x, labels


@pytest.fixture(scope="module")
def data():
    x, labels = clustered(5000)
    ids = np.arange(1000, 6000, dtype=np.int64)  # not 0..n-1, so id mapping is exercised
    rng = np.random.default_rng(1)
    q = normalise(x[rng.choice(len(x), 50, replace=False)]
                  + 0.2 * rng.standard_normal((50, DIM)))
    return ids, x, labels, q


def exact(ids, x, q, k):
    """Reference top-k with numpy over the float16-rounded vectors the index stores."""
    s = q @ x.astype(np.float16).astype(np.float32).T
    order = np.argsort(-s, axis=1)[:, :k]
    return np.take_along_axis(s, order, 1), ids[order]


def build(kind, ids, x):
    return VectorIndex.build(ids, x, kind, DIM, gpu=False)


def folder_with(path, ids, x) -> IndexFolder:
    """An index folder whose meta.sqlite holds x (one file per vector, so a file's chunk is one id)."""
    folder = IndexFolder.create_or_open(path, {"dim": DIM}, Config())
    with folder.store.transaction():
        for i, v in zip(ids, x):
            folder.store.replace_file(f"f{i}.txt", "sha", 1, 0.0, [{"chunk_hash": str(i), "text": f"t{i}", "vector": v}])
    return folder


def test_flat_search_returns_exact_neighbours(data):
    ids, x, _, q = data
    scores, got = build("flat", ids, x).search(q, 10)
    ref_scores, ref = exact(ids, x, q, 10)
    assert got.shape == (len(q), 10)
    assert all(set(a) == set(b) for a, b in zip(got, ref))
    np.testing.assert_allclose(scores, ref_scores, atol=1e-4)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_kinds_keep_recall(data, kind):
    ids, x, _, q = data
    _, got = build(kind, ids, x).search(q, 10)
    assert ann_recall_at_k(got, exact(ids, x, q, 10)[1], 10) >= 0.9


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_save_load_round_trip_gives_identical_results(data, tmp_path, kind):
    ids, x, _, q = data
    index = build(kind, ids, x)
    before = index.search(q, 10)
    index.save(tmp_path / "vectors.faiss")
    loaded = VectorIndex.load(tmp_path / "vectors.faiss", array_source(ids, x), gpu=False)
    assert len(loaded) == len(ids)
    after = loaded.search(q, 10)
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_array_equal(before[0], after[0])
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def test_another_kind_is_derived_from_sqlite_without_reencoding(data, tmp_path):
    ids, x, _, q = data
    folder = folder_with(tmp_path / "ix", ids[:2000], x[:2000])
    folder.write_vectors("hnsw")
    folder.write_vectors("flat")  # retyping reads the store's vectors: no encoder is involved
    _, got = folder.vector_index(gpu=False).search(q, 10)
    assert all(set(a) == set(b) for a, b in zip(got, exact(folder.store.vector_ids(), x[:2000], q, 10)[1]))


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_a_replaced_chunk_is_found_by_its_new_vector_only(data, tmp_path, kind):
    ids, x, _, _ = data
    folder = folder_with(tmp_path / "ix", ids[:2000], x[:2000])
    new_vec = x[4000]
    folder.store.replace_file(f"f{ids[7]}.txt", "sha2", 1, 0.0, [{"chunk_hash": "new", "text": "t", "vector": new_vec}])
    folder.write_vectors(kind)  # the real update path: the whole index derived again from SQLite
    [target] = folder.store.chunk_ids_for(f"f{ids[7]}.txt")
    index = folder.vector_index(gpu=False)
    assert len(index) == 2000
    _, got = index.search(new_vec[None], 2)
    assert target in got[0]
    _, got = index.search(x[7:8], 1)
    assert got[0, 0] != target  # the old vector is gone


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_removed_files_drop_out_of_the_results(data, tmp_path, kind):
    ids, x, _, q = data
    folder = folder_with(tmp_path / "ix", ids[:3000], x[:3000])
    folder.write_vectors(kind)
    stored = folder.store.vector_ids()
    _, first = folder.vector_index(gpu=False).search(q, 10)
    gone = np.unique(first[:, :5])
    folder.store.remove_files([f"f{ids[np.searchsorted(stored, g)]}.txt" for g in gone])
    folder.write_vectors(kind)
    index = folder.vector_index(gpu=False)
    assert len(index) == 3000 - len(gone)
    _, got = index.search(q, 10)
    assert not np.isin(got, gone).any()
    keep = ~np.isin(stored, gone)
    assert ann_recall_at_k(got, exact(stored[keep], x[:3000][keep], q, 10)[1], 10) >= 0.9


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
@pytest.mark.parametrize("exact_max", [20_000, 50])  # brute-force path and FAISS selector path
def test_allowed_ids_returns_k_hits_from_far_cluster(data, kind, exact_max, monkeypatch):
    ids, x, labels, q = data
    monkeypatch.setattr(vectors, "EXACT_FILTER_MAX", exact_max)
    index = build(kind, ids, x)
    query = x[labels == 0][:1]
    centre0 = x[labels == 0].mean(0)
    far = int(np.argmin([x[labels == c].mean(0) @ centre0 for c in range(50)]))
    allowed = ids[labels == far]
    assert len(allowed) > 50  # so exact_max=50 really takes the selector path
    scores, got = index.search(query, 10, allowed_ids=allowed)
    assert (got >= 0).all() and np.isin(got, allowed).all()
    ref_scores, ref = exact(ids[labels == far], x[labels == far], query, 10)
    assert set(got[0]) == set(ref[0])
    assert np.all(np.diff(scores[0]) <= 0)


def test_fewer_allowed_than_k_pads_with_minus_one(data):
    ids, x, _, q = data
    scores, got = build("flat", ids, x).search(q[:2], 5, allowed_ids=ids[:3])
    assert set(got[0, :3]) == set(ids[:3]) and (got[:, 3:] == -1).all()
    assert np.isneginf(scores[:, 3:]).all()


def test_empty_index_and_single_query_vector():
    index = VectorIndex.build(np.empty(0, np.int64), np.empty((0, 0)), "auto", DIM)
    scores, got = index.search(np.ones(DIM, np.float32), 3)
    assert got.shape == (1, 3) and (got == -1).all()


def test_auto_switches_to_ivf_above_threshold(data, monkeypatch):
    ids, x, _, q = data
    monkeypatch.setattr(vectors, "IVF_THRESHOLD", 1000)
    index = build("auto", ids[:500], x[:500])
    assert index.kind == "flat"
    index = build("auto", ids, x)  # the next index run derives it again, from all the vectors
    assert index.kind == "ivf"
    _, got = index.search(q, 10)
    assert ann_recall_at_k(got, exact(ids, x, q, 10)[1], 10) >= 0.9


def test_ann_recall_at_k_counts_overlap():
    assert ann_recall_at_k(np.array([[1, 2, 3]]), np.array([[3, 4, 1]]), 3) == pytest.approx(2 / 3)
    assert ann_recall_at_k(np.array([[1, -1]]), np.array([[1, -1]]), 2) == 1.0


# -- the FAISS file is derived from SQLite and checked against the manifest, never rebuilt on the read path ------
@pytest.mark.parametrize("damage", ["truncated", "stale", "missing", "garbage"])
def test_a_damaged_or_stale_faiss_file_names_the_command_that_derives_it_again(data, tmp_path, damage):
    ids, x, _, q = data
    folder = folder_with(tmp_path / "ix", ids[:300], x[:300])
    folder.manifest["roots"] = ["/docs"]
    folder.write_vectors("flat")
    path = folder.path / FAISS_FILE
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "stale":  # a complete FAISS file of other vectors: what a copied-back old file would be
        build("flat", ids[:200], x[:200]).save(path)
        manifest = json.loads((folder.path / "manifest.json").read_text())
        manifest["vectors"].pop("bytes")  # as in manifests of earlier versions: only the count can tell
        (folder.path / "manifest.json").write_text(json.dumps(manifest))
    elif damage == "missing":
        path.unlink()
    else:
        path.write_bytes(b"\0" * path.stat().st_size)  # the recorded size, unreadable content
    before = path.read_bytes() if path.exists() else None
    reader = IndexFolder(folder.path, readonly=True)
    with pytest.raises(DamagedIndex) as caught:
        reader.vector_index(gpu=False)
    message = str(caught.value)
    assert "FAISS" in message and f"genretrieve index /docs --index {folder.path} --kind flat`" in message and "--rebuild" in message
    assert (path.read_bytes() if path.exists() else None) == before  # the reader rebuilt and wrote nothing
    folder.write_vectors("flat")  # what that command does, from meta.sqlite
    _, got = IndexFolder(folder.path, readonly=True).vector_index(gpu=False).search(q, 10)
    assert all(set(a) == set(b) for a, b in zip(got, exact(folder.store.vector_ids(), x[:300], q, 10)[1]))


def test_a_reader_that_raced_a_finishing_run_loads_the_new_files(data, tmp_path):
    ids, x, _, q = data
    folder = folder_with(tmp_path / "ix", ids[:300], x[:300])
    folder.write_vectors("flat")
    reader = IndexFolder(folder.path, readonly=True)  # has read the manifest ...
    folder.store.remove_files([f"f{ids[0]}.txt"])
    folder.write_vectors("flat")  # ... before a run replaced the FAISS file and the manifest
    assert len(reader.vector_index(gpu=False)) == 299


def test_old_index_folders_with_vectors_npz_still_open_and_lose_it_on_the_next_run(data, tmp_path):
    ids, x, _, q = data
    folder = folder_with(tmp_path / "ix", ids[:300], x[:300])
    folder.write_vectors("ivf")
    manifest = json.loads((folder.path / "manifest.json").read_text())
    manifest["vectors"] = {k: manifest["vectors"][k] for k in ("generation", "kind", "count")}  # an earlier version's
    (folder.path / "manifest.json").write_text(json.dumps(manifest))
    legacy = faiss.read_index(str(folder.path / FAISS_FILE))
    faiss.extract_index_ivf(legacy).nprobe = 1  # what earlier versions saved (they set nprobe only when searching)
    faiss.write_index(legacy, str(folder.path / FAISS_FILE))
    (folder.path / "vectors.npz").write_bytes(b"the third copy")
    index = IndexFolder(folder.path, readonly=True).vector_index(gpu=False)
    assert index.nprobe == ivf_params(300)[1] and len(index) == 300
    IndexFolder(folder.path).write_vectors("ivf")
    assert not (folder.path / "vectors.npz").exists()


def test_in_memory_ivf_probes_what_ivf_params_says(data, tmp_path):
    ids, x, _, q = data
    nlist, nprobe = ivf_params(len(ids))
    assert (nlist, nprobe) == (128, 16)  # nlist // 8, where the in-memory IVF used to probe nlist // 16
    assert ivf_params(10_000) == (256, 32) and ivf_params(100_000) == (1264, 158)  # the README's figures
    index = build("ivf", ids, x)
    assert index.params() == {"nlist": nlist, "nprobe": nprobe}
    assert faiss.extract_index_ivf(index.index).nprobe == nprobe  # what FAISS itself will probe
    index.save(tmp_path / "vectors.faiss")
    assert VectorIndex.load(tmp_path / "vectors.faiss", array_source(ids, x)).nprobe == nprobe
    folder = folder_with(tmp_path / "ix", ids, x)
    folder.write_vectors("ivf")
    assert folder.manifest["vectors"]["nprobe"] == nprobe
    assert IndexFolder(folder.path, readonly=True).vector_index(gpu=False).nprobe == nprobe
    assert build("ivf", ids, x).search(q, 10)[1].tolist() == \
        VectorIndex.build(ids, x, "ivf", DIM, nprobe=nprobe).search(q, 10)[1].tolist()


def test_exact_top_k_ranks_equal_scores_by_id_whatever_the_block_order():
    from genretrieve.index.vectors import exact_top_k

    q = np.array([[1.0, 0.0]], np.float32)
    same = np.array([[1.0, 0.0]], np.float32)
    blocks = [(np.array([9]), same), (np.array([3]), same), (np.array([5]), np.array([[0.5, 0.0]], np.float32)),
              (np.array([7]), same)]
    for order in (blocks, blocks[::-1]):
        scores, ids = exact_top_k(q, 3, order)
        assert ids.tolist() == [[3, 7, 9]] and scores.tolist() == [[1.0, 1.0, 1.0]]
