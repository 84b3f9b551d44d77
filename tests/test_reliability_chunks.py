"""Chunk boundaries (issue 14, item 10): no chunk starts mid-word; no headings from <pre>, rulers or navigation."""
import re

from tokenizers import Regex, Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Split
from transformers import PreTrainedTokenizerFast

from genretrieve.index.chunking import chunk_document
from genretrieve.index.readers import Document, read_file


def char_tokenizer(text: str) -> PreTrainedTokenizerFast:
    """One token per character: the worst case of a subword tokenizer, every window edge can fall inside a word."""
    vocab = {"[UNK]": 0}
    for ch in text:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Split(Regex("."), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")


TEXT = ("Subscribe to the debian-user mailing list at lists.debian.org for help with installation "
        "and ask questions about the inevitable security updates that arrive every week for stable "
        "releases and the testing distribution alike without punctuation for a long while here")


def test_no_chunk_starts_or_ends_mid_word():
    chunks = chunk_document(Document("a.txt", TEXT), char_tokenizer(TEXT), max_tokens=60, overlap=0.15)
    assert len(chunks) > 4
    for chunk in chunks:
        s, e = chunk.start_char, chunk.end_char
        assert s == 0 or not (TEXT[s - 1].isalnum() and TEXT[s].isalnum()), chunk.text
        assert e == len(TEXT) or not (TEXT[e - 1].isalnum() and TEXT[e].isalnum()), chunk.text
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start_char, chunk.end_char))
    assert all(i in covered for i, ch in enumerate(TEXT) if not ch.isspace())  # nothing lost


def test_pre_blocks_do_not_make_headings(tmp_path):
    page = tmp_path / "howto.html"
    page.write_text("<html><body><h2>Compressing a file</h2><p>Intro text.</p>"
                    "<pre>#  define SET_BINARY_MODE(file) setmode(fileno(file), O_BINARY)\n"
                    "#else\n#  define SET_BINARY_MODE(file)\n#endif</pre>"
                    "<p>After the code comes more prose about the deflate stream.</p></body></html>")
    [doc] = read_file(page, tmp_path)
    chunks = chunk_document(doc, char_tokenizer(doc.text), max_tokens=40, overlap=0.0)
    assert {c.heading for c in chunks} == {"Compressing a file"}
    assert "SET_BINARY_MODE(file)" in doc.text  # the code itself is kept


def test_ruler_lines_do_not_make_headings():
    text = ("Title\n=====\n\nSome paragraph text that ends here.\n"
            "--------------------------------------------------------------\n\n"
            "______\n------\n\nMore text.\n")
    chunks = chunk_document(Document("a.txt", text), char_tokenizer(text), max_tokens=30, overlap=0.0)
    assert {c.heading for c in chunks} == {"Title"}


def test_texinfo_navigation_lines_are_dropped(tmp_path):
    info = tmp_path / "manual.txt"
    lines = ["File: grep.info,  Node: Usage,  Next: Performance,  Prev: Invoking,  Up: Top",
             "", "Usage", "*****", "", "Here is an example of using grep.",
             "Next: Performance, Previous: Invoking, Up: Top", "The end."]
    info.write_text("\n".join(lines) + "\n")
    [doc] = read_file(info, tmp_path)
    assert "Node:" not in doc.text and "Previous:" not in doc.text
    assert doc.text.split("\n").index("Here is an example of using grep.") == 5  # line numbers kept
    page = tmp_path / "manual.html"
    page.write_text('<html><body><div class="nav-panel"><p>Next: <a href="x">Performance</a>, '
                    'Previous: <a href="y">Invoking</a>, Up: <a href="z">Top</a></p></div>'
                    "<h1>Usage</h1><p>Here is an example.</p></body></html>")
    [doc] = read_file(page, tmp_path)
    assert not re.search(r"Next:|Previous:", doc.text) and "Here is an example." in doc.text
