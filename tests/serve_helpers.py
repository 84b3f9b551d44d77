"""A served fake: the index/search tests' fake encoder, an index of the fixture folder, a safety probe."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from .helpers import FakeEncoder, fixture_docs

HARMFUL_WORD = "weapon"  # the test probe flags queries that contain it


class ServedFake(FakeEncoder):
    """FakeEncoder plus what `genretrieve info` (and so /info) reads off a real encoder."""

    def __init__(self, probe_dir: Path | None = None):
        super().__init__()
        self.backbone.device, self.backbone.dtype, self.backbone.hidden_size = "cpu", "float32", 32
        self.teacher.dim = self.dim
        self.card.update(instructions={"query": "q:", "document": "d:"}, path=str(probe_dir) if probe_dir else None)


def write_probe(folder: Path) -> Path:
    """A safety probe on teacher features that fires on HARMFUL_WORD and on nothing else here."""
    from genretrieve.safety import SafetyProbe

    folder.mkdir(parents=True, exist_ok=True)
    direction = FakeEncoder()._embed([HARMFUL_WORD], concepts=False)[0]
    SafetyProbe("teacher", (30 * direction).tolist(), -5.0, 0.5, {"note": "test probe"}).save(folder)
    return folder


def build_fixture_index(root: Path, encoder) -> Path:
    from genretrieve.config import Config
    from genretrieve.index.build import build_index

    index_dir = root / "ix"
    build_index(fixture_docs(root / "docs"), index_dir, encoder, Config())
    encoder.calls.clear()
    return index_dir


@contextmanager
def served(index_dir: Path, encoder, window: float = 0.002, max_items: int = 64, **config_overrides):
    from genretrieve.config import load_config
    from genretrieve.serve import Service, create_app
    from genretrieve.serve.server import serve_in_thread

    service = Service(encoder, index_dir, load_config(None, **config_overrides), window=window, max_items=max_items)
    with serve_in_thread(create_app(service)) as url:
        yield url, service
