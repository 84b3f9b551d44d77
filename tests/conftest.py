"""Tests stay offline: the app's cache points at a per-session temp folder, never the user's."""
import os

import pytest

# before anything imports huggingface_hub, which reads this once: tests never reach for a hub
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session", autouse=True)
def genretrieve_home(tmp_path_factory):
    home = os.environ.get("GENRETRIEVE_TEST_HOME") or str(tmp_path_factory.mktemp("genretrieve-home"))
    os.environ["GENRETRIEVE_HOME"] = home
    yield home


@pytest.fixture(scope="session")
def real_encoder(genretrieve_home):
    """The packaged SmolLM2 + MiniLM encoder, loaded once per session (converts the GGUF once)."""
    from genretrieve import load_encoder

    return load_encoder()


@pytest.fixture
def fake(monkeypatch):
    """A deterministic fake encoder that every CLI command gets instead of the real models."""
    from .helpers import FakeEncoder

    encoder = FakeEncoder()
    monkeypatch.setattr("genretrieve.models.load.load_encoder", lambda config=None: encoder)
    monkeypatch.setattr("genretrieve.models.load.load_teacher_encoder", lambda config=None: encoder)
    return encoder
