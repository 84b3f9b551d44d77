"""The speed levers on tiny in-process models: int8 quantisation, CPU facts, the generate bench section."""
import numpy as np
import pytest
import torch

from genretrieve.errors import UsageError
from genretrieve.models.quantize import check_quantize, quantize_linear_int8

from .helpers import tiny_encoder


def test_int8_keeps_embeddings_close_and_the_fingerprints_equal():
    fp32, int8 = tiny_encoder(seed=3), tiny_encoder(seed=3)
    quantize_linear_int8(int8.backbone.model.base_model)
    quantize_linear_int8(int8.teacher.model)
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in int8.backbone.model.modules())
    texts = ["how do I reset my password ?", "what causes the tide of the sea ?", "the capital of france is paris ."]
    for encode in ("encode_queries", "encode_documents"):
        a, b = getattr(fp32, encode)(texts), getattr(int8, encode)(texts)
        cosine = (a * b).sum(1)
        assert cosine.min() > 0.95 and not np.allclose(a, b, atol=1e-6)  # close, and really quantised
    a, b = fp32.teacher.encode(texts), int8.teacher.encode(texts)
    assert (a * b).sum(1).min() > 0.95 and not np.allclose(a, b, atol=1e-6)
    assert (int8.backbone.fingerprint, int8.teacher.fingerprint) == (fp32.backbone.fingerprint, fp32.teacher.fingerprint)


def test_quantize_setting_is_checked_before_any_model_loads():
    cpu = torch.device("cpu")
    check_quantize("none", "bfloat16", cpu)
    check_quantize("int8", "auto", cpu)
    for args in (("int4", "auto", cpu), ("int8", "bfloat16", cpu), ("int8", "auto", torch.device("cuda"))):
        with pytest.raises(UsageError):
            check_quantize(*args)


def test_cpu_info_names_the_model_and_only_known_flags():
    from genretrieve.models.device import SPEED_FLAGS, cpu_info

    info = cpu_info()
    assert set(info) == {"model", "flags"} and set(info["flags"]) <= set(SPEED_FLAGS)


def test_generate_section_reports_tokens_per_second_per_batch_size():
    from genretrieve.bench.speed_generate import generate_section, generate_table
    from genretrieve.bench.speed import _table

    report = generate_section(tiny_encoder(), n_prompts=4, max_new_tokens=3, batch_sizes=(1, 2, 4))
    assert set(report["batch_sizes"]) == {"1", "2", "4"} and report["best_batch_size"] in (1, 2, 4)
    for row in report["batch_sizes"].values():
        assert 0 < row["tokens"] <= row["answers"] * 3 and row["tokens_per_s"] > 0
    assert "tokens/s" in str(generate_table(report, _table).columns[-1].header)


def test_chunk_documents_tokenizes_a_batch_in_one_call_and_chunks_like_one_at_a_time():
    from genretrieve.index.chunking import chunk_document, chunk_documents
    from genretrieve.index.readers import Document

    from .helpers import word_tokenizer

    texts = ["First record. " * 30, "   ", "Second one is short.", "Third: a longer line of words here.\n" * 20]
    docs = [Document(text=t, path="r.jsonl") for t in texts]
    tokenizer = word_tokenizer(texts)
    calls = []
    counting = lambda *args, **kwargs: calls.append(args) or tokenizer(*args, **kwargs)  # noqa: E731
    batched = chunk_documents(docs, counting, max_tokens=20, overlap=0.2)
    assert len(calls) == 1 and batched[1] == [] and len(batched[0]) > 1 and len(batched[3]) > 1
    assert batched == [chunk_document(doc, tokenizer, max_tokens=20, overlap=0.2) for doc in docs]


def test_precisions_option_is_checked_before_any_model_loads():
    from genretrieve.bench.speed import parse_precisions

    assert parse_precisions("int8, float32") == ["float32", "int8"]  # fp32 first: the cosine reference
    with pytest.raises(UsageError):
        parse_precisions("fp8")


def test_openmp_waits_passively_unless_the_user_chose(tmp_path):
    """Spinning OpenMP workers made single queries up to 34x slower on busy cores (README, Speed)."""
    import os
    import subprocess
    import sys

    script = "import genretrieve, os; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    run = lambda env: subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,  # noqa: E731
                                     text=True, check=True).stdout.strip()
    assert run(env) == "PASSIVE"
    assert run({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
