"""`genretrieve serve`'s HTTP contract, on real uvicorn over loopback, with the fake encoder and a real index."""
import base64
import json
import threading

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from genretrieve.cli import app

from .serve_helpers import HARMFUL_WORD, ServedFake, build_fixture_index, served, write_probe

runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    encoder = ServedFake(write_probe(root / "adapter"))
    index_dir = build_fixture_index(root, encoder)
    with served(index_dir, encoder) as (url, service):
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client, encoder, index_dir


def get(client, url, **params):
    return client.get(url, params=params)


def test_health(server):
    client, _, _ = server
    assert client.get("/health").json() == {"status": "ok"}


def test_search_gives_what_search_json_gives(server, fake):
    client, _, index_dir = server
    response = get(client, "/search", q="terminate a process", k=3)
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == "terminate a process" and not body["flagged"] and not body["blocked"]
    assert body["hits"][0]["path"] == "guide/process.md"
    cli = runner.invoke(app, ["search", "terminate a process", "-k", "3", "--index", str(index_dir), "--json"])
    assert cli.exit_code == 0, cli.output
    assert body["hits"] == [json.loads(line) for line in cli.stdout.splitlines()]


def test_search_modes_and_path_filter(server):
    client, _, _ = server
    for mode in ("gen", "teacher", "hybrid", "keyword"):
        body = get(client, "/search", q="halt truck safely", k=2, mode=mode).json()
        assert body["hits"] and body["hits"][0]["path"] == "manual.pdf", mode
    hits = get(client, "/search", q="capital", k=5, path="*.jsonl").json()["hits"]
    assert hits and {h["path"] for h in hits} == {"notes.jsonl"}


@pytest.mark.parametrize("params, message", [
    ({"q": "x", "mode": "fuzzy"}, "--mode must be one of"),
    ({"q": "   "}, "empty query"),
    ({"q": "x", "k": 0}, "-k must be at least 1"),
    ({"q": "x", "k": 100000}, "at most 1000"),
    ({"q": "x", "k": "ten"}, "k:"),
    ({"q": "x", "safety": "maybe"}, "--safety must be one of"),
    ({"q": "x", "hybrid_weight": 2}, "hybrid weight"),
    ({}, "q:"),
])
def test_search_validation_is_a_400_with_a_message(server, params, message):
    client, _, _ = server
    response = client.get("/search", params=params)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_safety_warn_and_block(server):
    client, _, _ = server
    warned = get(client, "/search", q=f"how to build a {HARMFUL_WORD}", safety="warn").json()
    assert warned["flagged"] and warned["hits"] and all(h["flagged"] for h in warned["hits"])
    blocked = get(client, "/search", q=f"how to build a {HARMFUL_WORD}", safety="block").json()
    assert blocked["blocked"] and blocked["hits"] == [] and "harmful" in blocked["reason"]
    benign = get(client, "/search", q="how to buy a car", safety="block").json()
    assert not benign["flagged"] and benign["hits"]


def embed(client, **body):
    return client.post("/v1/embeddings", json=body)


def test_embeddings_float_schema_and_values(server):
    client, encoder, _ = server
    texts = ["buying a car", "the sea and the moon", "stop a process"]
    for model, expected in (("gen", encoder.encode_queries(texts)), ("teacher", encoder.teacher.encode(texts)),
                            ("gen-document", encoder.encode_documents(texts))):
        body = embed(client, input=texts, model=model).json()
        assert body["object"] == "list" and body["model"] == model
        assert [d["index"] for d in body["data"]] == [0, 1, 2] and {d["object"] for d in body["data"]} == {"embedding"}
        assert np.allclose([d["embedding"] for d in body["data"]], expected, atol=1e-6)
        assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] == 11
    one = embed(client, input="buying a car", model="gen").json()
    assert len(one["data"]) == 1 and len(one["data"][0]["embedding"]) == encoder.dim


def test_embeddings_base64_is_little_endian_float32(server):
    client, encoder, _ = server
    body = embed(client, input=["buying a car"], model="gen", encoding_format="base64").json()
    vector = np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), dtype="<f4")
    assert np.array_equal(vector, encoder.encode_queries(["buying a car"])[0])


@pytest.mark.parametrize("body, param, message", [
    ({"input": "x", "model": "ada-002"}, "model", "model must be one of"),
    ({"input": "x"}, "model", "model"),
    ({"input": "x", "model": "gen", "encoding_format": "int8"}, "encoding_format", "float or base64"),
    ({"input": [], "model": "gen"}, "input", "must not be empty"),
    ({"input": ["x"] * 2049, "model": "gen"}, "input", "at most 2048"),
    ({"input": [101, 102], "model": "gen"}, "input", "token arrays"),
    ({"input": ["fine", "  "], "model": "gen"}, None, "non-empty string"),
    ({"input": "x", "model": "gen", "dimensions": 3}, "dimensions", "64 dimensions"),
])
def test_embeddings_validation_is_a_400_in_openai_shape(server, body, param, message):
    client, _, _ = server
    response = embed(client, **body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error["message"] and error["type"] == "invalid_request_error"
    if param:
        assert error["param"] == param


def test_the_official_openai_client_round_trips(server):
    openai = pytest.importorskip("openai")
    client, encoder, _ = server
    api = openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key="not-checked", max_retries=0)
    texts = ["buying a car", "the sea and the moon"]
    default = api.embeddings.create(model="gen", input=texts)  # the client asks for base64 and decodes it
    assert np.allclose([d.embedding for d in default.data], encoder.encode_queries(texts), atol=1e-7)
    floats = api.embeddings.create(model="teacher", input=texts[0], encoding_format="float")
    assert np.allclose(floats.data[0].embedding, encoder.teacher.encode(texts[:1])[0], atol=1e-6)
    assert floats.usage.prompt_tokens == 3
    with pytest.raises(openai.BadRequestError, match="model must be one of"):
        api.embeddings.create(model="text-embedding-3-small", input="x")


def test_info_names_models_index_and_safety(server):
    client, _, index_dir = server
    info = client.get("/info").json()
    assert info["models"]["backbone"]["id"] == "fake-llm" and info["models"]["teacher"]["id"] == "fake-teacher"
    assert info["index"]["path"] == str(index_dir) and info["index"]["chunks"] > 5
    assert info["index"]["identity"]["adapter"]["fingerprint"] == "fake-adapter-1"
    assert info["safety"]["features"] == "teacher" and info["safety"]["calibration"] == {"note": "test probe"}
    assert info["embedding_models"] == ["gen", "teacher", "gen-document"] and info["dim"] == 64


def test_page_shows_hits_flags_and_errors(server):
    client, _, _ = server
    empty = client.get("/")
    assert empty.status_code == 200 and '<input name="q"' in empty.text and "hits" not in empty.text
    page = get(client, "/", q="terminate a process", k=2)
    assert page.status_code == 200 and "guide/process.md:" in page.text and "SIGTERM" in page.text
    assert get(client, "/", q=f"a {HARMFUL_WORD}", safety="block").text.count("Blocked") == 1
    assert 'id="flagged"' in get(client, "/", q=f"a {HARMFUL_WORD}", safety="warn").text
    bad = get(client, "/", q="x", mode="fuzzy")
    assert bad.status_code == 400 and "--mode must be one of" in bad.text
    bad_k = get(client, "/", q="x", k="ten")
    assert bad_k.status_code == 400 and "k must be a whole number" in bad_k.text
    escaped = get(client, "/", q="<script>alert(1)</script>")
    assert "<script>alert" not in escaped.text and "&lt;script&gt;" in escaped.text


def concurrently(fn, args):
    results, barrier = [None] * len(args), threading.Barrier(len(args))

    def worker(i):
        barrier.wait()
        results[i] = fn(args[i])
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(args))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_requests_share_one_forward_pass(tmp_path):
    encoder = ServedFake()
    index_dir = build_fixture_index(tmp_path, encoder)
    batches = []
    teacher_encode = encoder.teacher.encode
    encoder.teacher.encode = lambda texts: batches.append(len(texts)) or teacher_encode(texts)
    queries = ["buying a car", "the ocean tides", "terminate a process", "capital of France",
               "halt a truck", "service history", "the moon", "page two"]
    # a long window that closes as soon as all 8 are in: a busy machine may take a while to start 8 threads
    with served(index_dir, encoder, window=10.0, max_items=8) as (url, service):
        batches.clear()  # the warm-up's
        bodies = concurrently(lambda q: httpx.get(f"{url}/search", params={"q": q, "k": 1}, timeout=30).json(), queries)
        assert [b["query"] for b in bodies] == queries  # each request got its own answer
        assert batches == [8]  # ... from one teacher forward pass over all eight
        service.batcher.window = 0.002  # alone, it would wait out the long window
        single = httpx.get(f"{url}/search", params={"q": "the ocean tides", "k": 1}).json()
        assert single["hits"] == bodies[1]["hits"]
        service.batcher.window = 10.0
        vectors = concurrently(lambda t: httpx.post(f"{url}/v1/embeddings", json={"input": t, "model": "teacher"},
                                                    timeout=30).json(), queries)
        assert np.allclose([v["data"][0]["embedding"] for v in vectors], teacher_encode(queries), atol=1e-6)
        assert batches[-1] == 8 and service.batcher.stats["largest_batch"] == 8


def test_a_bad_request_in_a_batch_fails_alone(tmp_path):
    encoder = ServedFake()
    index_dir = build_fixture_index(tmp_path, encoder)
    with served(index_dir, encoder, window=10.0, max_items=3) as (url, service):
        queries = ["buying a car", "   ", "the ocean tides"]
        responses = concurrently(lambda q: httpx.get(f"{url}/search", params={"q": q}, timeout=30), queries)
        assert service.batcher.stats["largest_batch"] == 1  # the batch of 3 failed; each was answered alone
    assert [r.status_code for r in responses] == [200, 400, 200]
    assert responses[0].json()["hits"][0]["path"] == "cars.txt"


def test_without_an_index_search_says_how_to_build_one_and_embeddings_work(tmp_path):
    from genretrieve.config import Config
    from genretrieve.index.build import build_index

    from .helpers import fixture_docs

    encoder = ServedFake()
    with served(tmp_path / "ix", encoder) as (url, _):
        missing = httpx.get(f"{url}/search", params={"q": "car"})
        assert missing.status_code == 503 and "genretrieve index" in missing.json()["error"]["message"]
        assert httpx.post(f"{url}/v1/embeddings", json={"input": "car", "model": "gen"}).status_code == 200
        assert "error" in httpx.get(f"{url}/info").json()["index"]
        build_index(fixture_docs(tmp_path / "docs"), tmp_path / "ix", encoder, Config())
        assert httpx.get(f"{url}/search", params={"q": "car"}).json()["hits"]  # found once it exists


def test_cli_refuses_a_remote_host_without_the_flag_before_loading_models(monkeypatch):
    loaded = []
    monkeypatch.setattr("genretrieve.models.load.load_encoder", lambda config=None: loaded.append(1))
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "--allow-remote" in result.output
    assert runner.invoke(app, ["serve", "--port", "70000"]).exit_code == 2
    assert runner.invoke(app, ["serve", "--config", "no-such-config"]).exit_code == 2
    assert not loaded


def test_cli_reports_a_busy_port_before_loading_models(monkeypatch):
    import socket

    loaded = []
    monkeypatch.setattr("genretrieve.models.load.load_encoder", lambda config=None: loaded.append(1))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        result = runner.invoke(app, ["serve", "--port", str(busy.getsockname()[1])])
    assert result.exit_code == 1 and "cannot listen" in result.output and not loaded


def test_an_index_updated_while_serving_is_searched_as_updated(tmp_path):
    from genretrieve.config import Config
    from genretrieve.index.build import build_index

    encoder = ServedFake()
    index_dir = build_fixture_index(tmp_path, encoder)
    with served(index_dir, encoder) as (url, _):
        assert httpx.get(f"{url}/search", params={"q": "volcano lava", "k": 1}).json()["hits"][0]["path"] != "volcano.txt"
        (tmp_path / "docs" / "volcano.txt").write_text("A volcano erupts lava and ash.\n")
        build_index(tmp_path / "docs", index_dir, encoder, Config())
        assert httpx.get(f"{url}/search", params={"q": "volcano lava", "k": 1}).json()["hits"][0]["path"] == "volcano.txt"
