import numpy as np
import pytest

from genretrieve.index import vectors
from genretrieve.bench.metrics import ann_recall_at_k
from genretrieve.index.vectors import VectorIndex

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
    index = VectorIndex(DIM, kind=kind, gpu=False)
    index.add(ids, x)
    return index


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
    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path, gpu=False)
    assert len(loaded) == len(ids)
    after = loaded.search(q, 10)
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_array_equal(before[0], after[0])
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def test_load_can_retype_without_reencoding(data, tmp_path):
    ids, x, _, q = data
    build("hnsw", ids, x).save(tmp_path)
    flat = VectorIndex.load(tmp_path, kind="flat", gpu=False)
    _, got = flat.search(q, 10)
    assert all(set(a) == set(b) for a, b in zip(got, exact(ids, x, q, 10)[1]))


def test_load_rebuilds_when_faiss_file_is_stale(data, tmp_path):
    ids, x, _, q = data
    index = build("flat", ids[:100], x[:100])
    index.save(tmp_path)
    stale = (tmp_path / "vectors.faiss").read_bytes()
    index.add(ids[100:200], x[100:200])
    index.save(tmp_path)
    (tmp_path / "vectors.faiss").write_bytes(stale)  # as if a crash hit between the replaces
    _, got = VectorIndex.load(tmp_path, gpu=False).search(x[150:151], 1)
    assert got[0, 0] == ids[150]


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_add_with_existing_id_replaces_vector(data, kind):
    ids, x, _, _ = data
    index = build(kind, ids, x)
    index.search(x[:1], 1)  # build FAISS first so the update path is exercised
    target, new_vec = ids[7], x[4000:4001]
    index.add(np.array([target]), new_vec)
    assert len(index) == len(ids)
    _, got = index.search(new_vec, 2)
    assert target in got[0]
    _, got = index.search(x[7:8], 1)
    assert got[0, 0] != target  # the old vector is gone


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_remove_drops_vectors_from_results(data, kind):
    ids, x, _, q = data
    index = build(kind, ids, x)
    _, first = index.search(q, 10)
    gone = np.unique(first[:, :5])
    index.remove(gone)
    assert len(index) == len(ids) - len(gone)
    _, got = index.search(q, 10)
    assert not np.isin(got, gone).any()
    keep = ~np.isin(ids, gone)
    assert ann_recall_at_k(got, exact(ids[keep], x[keep], q, 10)[1], 10) >= 0.9


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
    index = VectorIndex(DIM)
    scores, got = index.search(np.ones(DIM, np.float32), 3)
    assert got.shape == (1, 3) and (got == -1).all()


def test_auto_switches_to_ivf_above_threshold(data, monkeypatch):
    ids, x, _, q = data
    monkeypatch.setattr(vectors, "IVF_THRESHOLD", 1000)
    index = build("auto", ids[:500], x[:500])
    assert index.effective_kind() == "flat"
    index.add(ids[500:], x[500:])
    assert index.effective_kind() == "ivf"
    _, got = index.search(q, 10)
    assert ann_recall_at_k(got, exact(ids, x, q, 10)[1], 10) >= 0.9


def test_ann_recall_at_k_counts_overlap():
    assert ann_recall_at_k(np.array([[1, 2, 3]]), np.array([[3, 4, 1]]), 3) == pytest.approx(2 / 3)
    assert ann_recall_at_k(np.array([[1, -1]]), np.array([[1, -1]]), 2) == 1.0
