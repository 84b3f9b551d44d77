"""Teacher- and keyword-mode commands never load (or, in a fresh process, import) the LLM."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genretrieve.cli import app

from .helpers import fixture_docs, tiny_teacher, tiny_tokenizer

runner = CliRunner()


class LLMLoaded(Exception):
    pass


@pytest.fixture
def no_llm(monkeypatch):
    """The real loaders with a tiny teacher; loading the backbone raises and is counted."""
    from genretrieve.models import load, teacher_only

    teacher, calls = tiny_teacher(), []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise LLMLoaded("the backbone was loaded")

    monkeypatch.setattr(load, "load_teacher", lambda *args, **kwargs: teacher)
    monkeypatch.setattr(load, "load_backbone", refuse)
    monkeypatch.setattr(teacher_only.ChunkTokenizer, "tokenizer", tiny_tokenizer())  # the backbone's tokenizer stand-in
    return calls


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_teacher_mode_index_and_search_without_the_filter_never_load_the_llm(no_llm, tmp_path):
    docs = fixture_docs(tmp_path / "docs")
    result = run("index", docs, "--index", tmp_path / "ix", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["chunks_total"] > 0
    for mode in ("teacher", "keyword"):
        result = run("search", "how do I terminate a process", "--index", tmp_path / "ix", "--mode", mode, "--json",
                     "--safety", "off")
        assert result.exit_code == 0, result.output
        assert [json.loads(line) for line in result.stdout.splitlines()]
    assert no_llm == []
    listing = run("indexes", "--root", tmp_path, "--json")  # a manifest without backbone or adapter lists fine
    assert listing.exit_code == 0 and json.loads(listing.stdout)["adapter"] is None
    assert run("indexes", "--root", tmp_path).exit_code == 0

    # the paths that do need the LLM still ask for it (so this test can fail)
    assert isinstance(run("search", "terminate", "--index", tmp_path / "ix", "--mode", "gen").exception, LLMLoaded)
    # the filter reads the LLM's states, whatever the mode
    assert isinstance(run("search", "terminate", "--index", tmp_path / "ix", "--safety", "warn").exception, LLMLoaded)
    assert isinstance(run("index", docs, "--index", tmp_path / "gx", "--doc-encoder", "gen").exception, LLMLoaded)
    assert len(no_llm) == 3


def test_an_imported_paper_adapter_still_refuses_teacher_documents_without_loading_the_llm(no_llm, tmp_path):
    adapter = tmp_path / "paper-adapter"
    adapter.mkdir()
    (adapter / "adapter.json").write_text(json.dumps({"teacher_space": "reference"}))
    config = tmp_path / "paper.yaml"
    config.write_text(f"model:\n  adapter: {adapter}\n")
    result = run("index", fixture_docs(tmp_path / "docs"), "--index", tmp_path / "ix", "--config", config)
    assert result.exit_code == 2 and "--doc-encoder gen" in result.output
    assert no_llm == []


@pytest.mark.slow
def test_cold_teacher_search_does_not_import_the_llm_code(tmp_path):
    """A fresh process with the packaged models: index and search in teacher mode import no transformers model code."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("To stop a running process, send it a signal with kill.\n")
    script = (
        "import json, sys\nfrom genretrieve.cli import app\n"
        "app(sys.argv[1:], standalone_mode=False)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.endswith(('modeling_llama', 'modeling_utils')))),"
        " file=sys.stderr)\n")

    def cold(*args):
        done = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stderr.strip().splitlines()[-1])

    cold("index", docs, "--index", tmp_path / "first")  # a fresh cache converts the GGUF once (that loads the LLM)
    assert cold("index", docs, "--index", tmp_path / "ix") == []
    assert cold("search", "how do I stop a process?", "--index", tmp_path / "ix", "--json", "--safety", "off") == []
    assert cold("search", "how do I stop a process?", "--index", tmp_path / "ix", "--mode", "gen") == [
        "transformers.modeling_utils", "transformers.models.llama.modeling_llama"]  # it sees the LLM when it loads


def test_the_bert_teacher_matches_transformers_and_keeps_its_fingerprint(tmp_path):
    """bert.py (no transformers model code) against transformers' BertModel on a tiny random BERT."""
    import torch
    from transformers import BertConfig, BertModel

    from genretrieve.models import bert
    from genretrieve.models.fast_tokenizer import FastTokenizer
    from genretrieve.models.teacher import Teacher

    tokenizer = tiny_tokenizer()
    torch.manual_seed(1)
    model = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=64)).eval()
    with torch.no_grad():  # make padding matter: a wrong mask or position would move the result
        model.embeddings.position_embeddings.weight.mul_(10)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert bert.supports(tmp_path)
    texts = ["how do I reset my password ?", "the cat", "what causes the tide of the sea and the moon ? " * 8]
    reference = Teacher(model, tokenizer, "tiny", max_length=32)
    ours = Teacher(bert.load_bert(tmp_path, torch.float32), FastTokenizer(tmp_path / "tokenizer.json"), "tiny", max_length=32)
    assert ours.fingerprint == reference.fingerprint
    assert abs(ours.encode(texts, batch_size=3) - reference.encode(texts, batch_size=3)).max() < 1e-5
    assert abs(ours.encode(texts, batch_size=1) - ours.encode(texts, batch_size=3)).max() < 1e-5  # padding-free
    # called as transformers' tokenizer is elsewhere (token counts of /v1/embeddings): same ids, unpadded lists
    kwargs = dict(add_special_tokens=False, padding=False, truncation=False, return_tensors=None)
    assert ours.tokenizer(texts, **kwargs)["input_ids"] == tokenizer(texts, **kwargs)["input_ids"]
    config = tmp_path / "config.json"
    config.write_text(config.read_text().replace('"bert"', '"roberta"'))
    assert not bert.supports(tmp_path)  # other architectures go through transformers


def test_the_offset_tokenizer_chunks_exactly_like_the_transformers_tokenizer(tmp_path):
    from genretrieve.index.chunking import chunk_documents
    from genretrieve.index.readers import Document
    from genretrieve.models.fast_tokenizer import FastTokenizer

    from .helpers import word_tokenizer

    texts = ["First record, with punctuation! " * 30, "Short one.", "Lines\nof words here.\n" * 40, "  "]
    reference = word_tokenizer(texts)
    reference.save_pretrained(tmp_path)
    ours = FastTokenizer(tmp_path / "tokenizer.json")
    docs = [Document(text=t, path="a.jsonl") for t in texts]
    assert chunk_documents(docs, ours, 25, 0.2) == chunk_documents(docs, reference, 25, 0.2)
    assert ours(texts[0], add_special_tokens=False)["input_ids"] == reference(texts[0], add_special_tokens=False)["input_ids"]


@pytest.mark.slow
def test_the_packaged_backbone_tokenizer_chunks_alike_without_transformers(tmp_path):
    from transformers import AutoTokenizer

    from genretrieve.index.chunking import chunk_documents
    from genretrieve.index.readers import read_file
    from genretrieve.models.fast_tokenizer import FastTokenizer
    from genretrieve.models.teacher_only import ChunkTokenizer

    chunker = ChunkTokenizer("packaged:smollm2")
    assert isinstance(chunker.tokenizer, FastTokenizer)
    reference = AutoTokenizer.from_pretrained(chunker._resolved[0])
    docs = [doc for path in sorted(fixture_docs(tmp_path / "docs").rglob("*.md")) for doc in read_file(path, tmp_path / "docs")]
    docs += [doc for doc in read_file(Path(__file__).parent.parent / "README.md", Path(__file__).parent.parent)]
    assert chunk_documents(docs, chunker.tokenizer, 200, 0.15) == chunk_documents(docs, reference, 200, 0.15)
