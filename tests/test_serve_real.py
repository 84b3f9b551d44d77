"""`genretrieve serve` as a user starts it, with the real packaged models (slow: loads them twice)."""
import json
import urllib.request

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def get(url):
    with urllib.request.urlopen(url, timeout=300) as response:
        return json.loads(response.read())


def post(url, body):
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())


def test_the_cli_server_answers_with_the_real_models(real_encoder, tmp_path):
    from genretrieve.bench.serve import start_server, stop_server
    from genretrieve.config import Config
    from genretrieve.index.build import build_index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tides.txt").write_text("The tides of the ocean rise and fall twice a day, pulled by the moon's gravity.\n")
    (docs / "python.md").write_text("# Lists\n\nA Python list is sorted in place with list.sort().\n")
    (docs / "cooking.txt").write_text("Bake the bread at 220 degrees for forty minutes until the crust is brown.\n")
    build_index(docs, tmp_path / "ix", real_encoder, Config())
    process, url, first_answer_s = start_server(tmp_path / "ix", None)
    try:
        for mode in ("teacher", "gen", "hybrid"):
            body = get(f"{url}/search?q=why+does+the+sea+level+change+during+the+day&k=3&mode={mode}")
            assert body["hits"][0]["path"] == "tides.txt", mode
        texts = ["how do I sort a list in python?"]
        served = post(f"{url}/v1/embeddings", {"model": "gen", "input": texts})["data"][0]["embedding"]
        assert np.dot(served, real_encoder.encode_queries(texts)[0]) > 0.999  # the same model, same dtype
        teacher = post(f"{url}/v1/embeddings", {"model": "teacher", "input": texts})["data"][0]["embedding"]
        assert np.dot(teacher, real_encoder.teacher.encode(texts)[0]) > 0.999
        info = get(f"{url}/info")
        assert info["models"]["adapter"]["trained"] and info["index"]["chunks"] == 3
        assert info["models"]["backbone"]["fingerprint"] == real_encoder.backbone.fingerprint
    finally:
        stop_server(process)
    assert process.returncode == 0 and first_answer_s > 0
