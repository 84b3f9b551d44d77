"""A GGUF split over packages (the Qwen2.5-Coder parts): assembled in order, verified, and refused when wrong."""
import hashlib
import sys

import pytest

from genretrieve.errors import MissingWeights
from genretrieve.models import assets


@pytest.fixture
def split(tmp_path, monkeypatch):
    """Three fake part packages on sys.path, registered as the packaged model "fake-split"."""
    parts = [bytes([i]) * (1000 + i) for i in range(3)]
    for i, data in enumerate(parts, 1):
        folder = tmp_path / "site" / f"fake_split_part{i}" / "data"
        folder.mkdir(parents=True)
        (folder.parent / "__init__.py").write_text("")
        (folder / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    whole = b"".join(parts)
    spec = assets.SplitGGUF(tuple(f"fake_split_part{i}" for i in range(1, 4)), "fake.gguf", len(whole),
                            hashlib.sha256(whole).hexdigest())
    monkeypatch.setitem(assets.SPLIT, "fake-split", spec)
    monkeypatch.setenv("GENRETRIEVE_HOME", str(tmp_path / "home"))
    yield tmp_path / "site", whole
    for i in range(1, 4):
        sys.modules.pop(f"fake_split_part{i}", None)


def test_parts_are_joined_in_order_and_verified(split):
    _, whole = split
    path = assets.assembled_gguf("fake-split")
    assert path.read_bytes() == whole and path.parent == assets.home() / "gguf"
    assert assets.assembled_gguf("fake-split") == path  # second call: the verified file is reused


def test_a_corrupt_part_is_refused_and_leaves_no_file(split):
    site, _ = split
    (site / "fake_split_part2" / "data" / "part02.bin").write_bytes(b"\x00" * 1001)
    with pytest.raises(MissingWeights, match="make models-large") as err:
        assets.assembled_gguf("fake-split")
    assert "sha256" in str(err.value)
    assert list((assets.home() / "gguf").iterdir()) == []  # the temp file is gone, nothing half-written remains


def test_a_missing_part_names_the_install_command(split):
    site, _ = split
    (site / "fake_split_part3" / "data" / "part03.bin").unlink()
    with pytest.raises(MissingWeights, match="fake-split-part3") as err:
        assets.assembled_gguf("fake-split")
    assert "make models-large" in str(err.value)


def test_the_large_backbone_is_a_known_packaged_model():
    spec = assets.SPLIT["qwen2.5-coder-1.5b"]
    assert len(spec.packages) == 22 and spec.size == 1_117_320_768 and len(spec.sha256) == 64
