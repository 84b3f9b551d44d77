"""Shared test helpers: tiny in-process models and tokenizers, no downloads."""

from __future__ import annotations

from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from transformers import PreTrainedTokenizerFast


def word_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    """A fast WordLevel tokenizer (whitespace/punctuation split) whose vocab covers `texts`."""
    pre = Whitespace()
    vocab = {"[UNK]": 0}
    for text in texts:
        for word, _ in pre.pre_tokenize_str(text):
            vocab.setdefault(word, len(vocab))
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")


def make_pdf(path, pages: list[str]) -> None:
    """Write a PDF with one page per string (fpdf2, core font, so latin-1 text only)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))


WORDS = ("the a an of to in and or is are was be how what why when where who do does can i you it this that "
         "for on with as by from at not no yes python process kill reset password account page capital france "
         "paris city river sea tide moon sun water fire cat dog lethal dose caffeine file folder index search "
         "query answer document passage question generate summarize following best answers relevant").split()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer with pad/eos tokens, for tiny in-process models."""
    vocab = {"[PAD]": 0, "[EOS]": 1, "[UNK]": 2}
    for word in WORDS + list(".,:;?!'\"()-"):
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    from tokenizers import decoders
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")


def tiny_backbone(seed: int = 0, arch: str = "llama"):
    """A 2-layer random-weight decoder (d=32) wrapped as a frozen genretrieve Backbone."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

    from genretrieve.models.backbone import freeze

    tokenizer = tiny_tokenizer()
    kwargs = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                  tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, bos_token_id=1)
    torch.manual_seed(seed)
    if arch == "qwen3":
        model = Qwen3ForCausalLM(Qwen3Config(head_dim=8, **kwargs))
    else:
        model = LlamaForCausalLM(LlamaConfig(**kwargs))
    return freeze(model.float(), f"tiny-{arch}-{seed}", tokenizer)


def tiny_teacher(seed: int = 0):
    """A 2-layer random-weight BERT (d=16) as the teacher."""
    import torch
    from transformers import BertConfig, BertModel

    from genretrieve.models.teacher import Teacher

    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    model = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=512))
    return Teacher(model, tokenizer, f"tiny-bert-{seed}")


def tiny_encoder(seed: int = 0, adapter: str = "fresh", max_length: int = 512, batch_size: int = 4):
    from genretrieve.config import Config
    from genretrieve.models.load import build_encoder

    config = Config()
    config.model.adapter = adapter
    config.model.max_length = max_length
    config.model.batch_size = batch_size
    return build_encoder(tiny_backbone(seed), tiny_teacher(), config)


# --- a deterministic fake encoder for index/search tests -------------------------------------------
CONCEPTS = {"car": "vehicle", "automobile": "vehicle", "truck": "vehicle", "terminate": "stop", "kill": "stop",
            "halt": "stop", "sea": "ocean", "ocean": "ocean"}


class _FakeModels:
    def __init__(self, model_id, fingerprint, tokenizer=None):
        self.model_id, self.fingerprint, self.tokenizer = model_id, fingerprint, tokenizer


class FakeEncoder:
    """Hashed bag of concepts: 'gen' maps synonyms to one concept, so it finds what keywords miss.

    Satisfies what index/search use of GenEncoder: backbone (tokenizer, id, fingerprint), teacher
    (encode, id, fingerprint), card, dim, encode_queries, encode_documents.
    """

    dim = 64
    teacher_space_matches = True

    def __init__(self, adapter_fingerprint: str = "fake-adapter-1"):
        self.backbone = _FakeModels("fake-llm", "fake-llm-fp", word_tokenizer([]))
        self.teacher = _FakeModels("fake-teacher", "fake-teacher-fp")
        self.teacher.encode = lambda texts: self._embed(texts, concepts=False)
        self.card = {"fingerprint": adapter_fingerprint, "trained": True}
        self.calls = []  # texts encoded, so tests can tell what was re-encoded

    def _embed(self, texts, concepts=True):
        import hashlib
        import re

        import numpy as np

        self.calls.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                word = CONCEPTS.get(word, word) if concepts else word
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1
            out[row] /= max(np.linalg.norm(out[row]), 1e-9)
        return out

    def encode_queries(self, texts, instruction=None):
        return self._embed(texts)

    def encode_documents(self, texts, instruction=None):
        return self._embed(texts)


def fixture_docs(root):
    """A folder like a user's: txt, md, html, pdf, jsonl, a binary file and a corrupt pdf."""
    from pathlib import Path

    root = Path(root)
    (root / "guide").mkdir(parents=True)
    (root / "cars.txt").write_text("Buying a used car\n\nCheck the automobile service history.\nAsk for the receipts.\n")
    (root / "guide" / "process.md").write_text("# Processes\n\nIntro line.\n\n## Stopping\n\nTo terminate a "
                                               "process send it SIGTERM with the kill command.\n")
    (root / "guide" / "sea.html").write_text("<html><head><title>Tides</title><script>var x=1;</script></head>"
                                             "<body><nav>menu</nav><h1>Tides</h1><p>The ocean rises and falls "
                                             "twice a day because of the moon.</p></body></html>")
    make_pdf(root / "manual.pdf", ["Page one is about trucks and their engines.",
                                   "Page two explains how to halt a truck safely."])
    (root / "notes.jsonl").write_text('{"text": "Paris is the capital of France.", "title": "France"}\n'
                                      '{"text": "Berlin is the capital of Germany.", "title": "Germany"}\n')
    (root / "blob.txt").write_bytes(b"\x00\x01\x02binary\x00" * 20)
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf \x00\xff")
    return root


# A chat template in the shape of SmolLM2's (a default system turn, then the user turn and the
# assistant header), written with the tiny vocabulary's words.
TINY_CHAT_TEMPLATE = ("{% if messages[0]['role'] != 'system' %}you are a python answer page .{% endif %}"
                      "{% for m in messages %} {{ m['role'] == 'user' and 'question' or 'the' }} : {{ m['content'] }} ."
                      "{% endfor %}{% if add_generation_prompt %} answer :{% endif %}")


def tiny_chat_encoder(seed: int = 0, **kwargs):
    """A tiny encoder whose tokenizer has a chat template, so a fresh adapter gets the chat framing."""
    from genretrieve.config import Config
    from genretrieve.models.load import build_encoder

    backbone = tiny_backbone(seed)
    backbone.tokenizer.chat_template = TINY_CHAT_TEMPLATE
    config = Config()
    config.model.adapter = "fresh"
    for key, value in {"batch_size": 4, **kwargs}.items():
        setattr(config.model, key, value)
    return build_encoder(backbone, tiny_teacher(), config)


def run_cli(*args, **kwargs):
    """The genretrieve CLI in-process (CliRunner), arguments stringified."""
    from typer.testing import CliRunner

    from genretrieve.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], **kwargs)


def index_json(docs, index_dir, *extra) -> dict:
    """`genretrieve index DOCS --index DIR --json`, asserted to succeed: its summary."""
    import json

    result = run_cli("index", docs, "--index", index_dir, "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def search_json(index_dir, query, *extra) -> list[dict]:
    """`genretrieve search QUERY --index DIR --json`, asserted to succeed: one dict per hit."""
    import json

    result = run_cli("search", query, "--index", index_dir, "--json", *extra)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]
