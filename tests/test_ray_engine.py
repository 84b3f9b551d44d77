"""`index --engine ray` on a local Ray (2 CPUs) with the fake encoder, built by the workers themselves.

Skipped where Ray is not installed (it is an optional extra); slow because every test starts
Ray worker processes that import genretrieve and transformers.
"""
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

ray = pytest.importorskip("ray", reason="Ray is optional: pip install 'genretrieve[ray]'")

from genretrieve.cli import app  # noqa: E402
from genretrieve.config import load_config  # noqa: E402
from genretrieve.errors import GenretrieveError  # noqa: E402
from genretrieve.index.build import build_index  # noqa: E402
from genretrieve.index.ray_engine import MAX_RETRIES, RayOptions, build_index_ray  # noqa: E402
from genretrieve.search import Searcher  # noqa: E402

from .helpers import FakeEncoder  # noqa: E402
from .scale_helpers import FAIL_DIR, QUERIES, assert_same_index, more_docs, snapshot  # noqa: E402

pytestmark = pytest.mark.slow
runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    fail_dir = tmp_path_factory.mktemp("ray-failures")
    # workers are other processes: they find tests.scale_helpers on PYTHONPATH and the failure marker by env
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO), FAIL_DIR: str(fail_dir),
                                       "HF_HUB_OFFLINE": "1", "GENRETRIEVE_HOME": os.environ["GENRETRIEVE_HOME"]}})
    yield fail_dir
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The docs and their single-process index (the reference every Ray run must equal), built once."""
    base = tmp_path_factory.mktemp("ray-docs")
    docs = more_docs(base / "docs")
    config = load_config(None, index__chunk_tokens=8, index__chunk_overlap=0.25)  # many chunks: order matters
    build_index(docs, base / "whole", FakeEncoder(), config)
    return docs, base / "whole", config


def ray_index(folder, index_dir, factory="tests.scale_helpers:fake_encoder", **options):
    docs, _, config = folder
    progress = []
    summary = build_index_ray(docs, index_dir, config, RayOptions(factory=factory, **options),
                              report=lambda stage, done, total: progress.append((stage, done, total)))
    return summary, progress


def test_two_workers_equal_the_single_process_index(local_ray, folder, tmp_path):
    docs, whole, config = folder
    summary, progress = ray_index(folder, tmp_path / "ix", workers=2, batch_size=4)  # many batches over 2 workers
    assert_same_index(whole, tmp_path / "ix")
    assert [f["path"] for f in summary.files_failed] == ["broken.pdf"]
    assert summary.files_indexed == 10 and summary.chunks_encoded > 0  # empty.txt counts, with no chunks
    assert ("encoding", 11, 11) in progress  # progress reached the caller, file by file

    # the CLI path, searched like any index; a re-run only retries the unreadable file
    small = tmp_path / "small.yaml"
    small.write_text("index:\n  chunk_tokens: 8\n  chunk_overlap: 0.25\n")
    os.environ["GENRETRIEVE_ENCODER_FACTORY"] = "tests.scale_helpers:fake_encoder"
    try:
        for _ in range(2):
            result = runner.invoke(app, ["index", str(docs), "--index", str(tmp_path / "cli"), "--engine", "ray",
                                         "--workers", "2", "--config", str(small), "--json"])
            assert result.exit_code == 0, result.output
    finally:
        del os.environ["GENRETRIEVE_ENCODER_FACTORY"]
    assert json.loads(result.stdout)["files_unchanged"] == 10
    assert_same_index(whole, tmp_path / "cli")
    for mode in ("gen", "hybrid"):
        hits = [[[h.to_dict() for h in r.hits] for r in Searcher(ix, FakeEncoder(), config).search(QUERIES, mode=mode)]
                for ix in (whole, tmp_path / "cli")]
        assert hits[0] == hits[1] and all(hits[0])


def test_a_failed_batch_is_retried_and_the_result_is_still_exact(local_ray, folder, tmp_path):
    _, whole, _ = folder
    assert not list(local_ray.glob("attempt-*"))
    ray_index(folder, tmp_path / "ix", factory="tests.scale_helpers:flaky_encoder", workers=2, batch_size=4)
    attempts = sorted(p.name for p in local_ray.glob("attempt-*"))
    assert len(attempts) >= 2  # the first attempt of the truck batch raised, a retry succeeded
    assert_same_index(whole, tmp_path / "ix")


def test_when_retries_run_out_the_previous_index_stays_as_it_was(local_ray, folder, tmp_path):
    docs, whole, _ = folder
    ray_index(folder, tmp_path / "ix", workers=1)
    before, attempts_before = snapshot(tmp_path / "ix"), len(list(local_ray.glob("attempt-*")))
    (docs / "manual-2.txt").write_text("A truck that never gets encoded.\n")
    try:
        with pytest.raises(GenretrieveError, match="the index was left as it was"):
            ray_index(folder, tmp_path / "ix", factory="tests.scale_helpers:broken_encoder", workers=1)
    finally:
        (docs / "manual-2.txt").unlink()
    assert len(list(local_ray.glob("attempt-*"))) - attempts_before == 1 + MAX_RETRIES  # bounded, not forever
    after = snapshot(tmp_path / "ix")
    assert after["chunks"] == before["chunks"] and (after["vectors"] == before["vectors"]).all()
    assert_same_index(whole, tmp_path / "ix")
