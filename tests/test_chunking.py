"""Chunking: window sizes, overlap, sentence-friendly cuts and provenance a search hit shows."""

from __future__ import annotations

import pytest

from genretrieve.index.chunking import chunk_document, whole_document
from genretrieve.index.readers import Document, read_file
from tests.helpers import make_pdf, word_tokenizer


def n_tokens(tok, text: str) -> int:
    return len(tok(text, add_special_tokens=False)["input_ids"])


def prose(n_sentences: int) -> str:
    # 7 tokens per sentence (6 words + '.'), so hard cuts at 40 tokens land mid-sentence.
    return " ".join(f"w{i} alpha beta gamma delta s{i} ." for i in range(n_sentences))


def test_windows_fit_max_tokens_slice_back_and_cover_the_document():
    doc = Document("p.txt", prose(40), {})
    tok = word_tokenizer([doc.text])
    chunks = chunk_document(doc, tok, max_tokens=40, overlap=0.25)
    assert len(chunks) > 5
    for c in chunks:
        assert c.text and n_tokens(tok, c.text) <= 40
        assert doc.text[c.start_char : c.end_char] == c.text
    assert chunks[0].start_char == 0 and chunks[-1].end_char == len(doc.text)


def test_consecutive_chunks_overlap_by_the_configured_tokens():
    doc = Document("p.txt", prose(40), {})
    tok = word_tokenizer([doc.text])
    chunks = chunk_document(doc, tok, max_tokens=40, overlap=0.25)
    for prev, nxt in zip(chunks, chunks[1:]):
        assert nxt.start_char < prev.end_char
        assert n_tokens(tok, doc.text[nxt.start_char : prev.end_char]) == 10


def test_windows_end_at_sentence_ends_when_one_is_near():
    doc = Document("p.txt", prose(40), {})
    chunks = chunk_document(doc, word_tokenizer([doc.text]), max_tokens=40, overlap=0.25)
    assert all(c.text.endswith(".") for c in chunks)


def test_hard_cut_when_no_boundary_in_reach():
    text = " ".join(f"t{i}" for i in range(100))  # one long line, no punctuation
    doc = Document("flat.txt", text, {})
    tok = word_tokenizer([text])
    chunks = chunk_document(doc, tok, max_tokens=20, overlap=0.15)  # stride 17
    assert [c.text.split()[0] for c in chunks] == ["t0", "t17", "t34", "t51", "t68", "t85"]
    assert all(n_tokens(tok, c.text) == 20 for c in chunks[:-1])


def test_short_document_is_one_chunk_trimmed():
    doc = Document("s.md", "\n\n  Just a short note.  \n", {})
    [c] = chunk_document(doc, word_tokenizer([doc.text]), max_tokens=200)
    assert (c.text, c.start_char, c.start_line, c.end_line) == ("Just a short note.", 4, 3, 3)


def test_whitespace_only_document_has_no_chunks():
    doc = Document("blank.txt", " \n\t\n", {})
    assert chunk_document(doc, word_tokenizer(["x"])) == []
    assert whole_document(doc) == []


def test_extreme_overlap_terminates_without_empty_chunks():
    text = " ".join(f"t{i} ." for i in range(60))
    doc = Document("x.txt", text, {})
    chunks = chunk_document(doc, word_tokenizer([text]), max_tokens=4, overlap=0.9)
    assert chunks and all(c.text for c in chunks)
    assert chunks[-1].end_char == len(text)
    assert all(b.start_char > a.start_char for a, b in zip(chunks, chunks[1:]))


def test_line_numbers_point_at_source_lines():
    # 5 tokens per line; with 10-token windows and no overlap each chunk is two whole lines.
    text = "\n".join(f"l{i} one two three ." for i in range(1, 7)) + "\n"
    doc = Document("lines.txt", text, {})
    chunks = chunk_document(doc, word_tokenizer([text]), max_tokens=10, overlap=0.0)
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 2), (3, 4), (5, 6)]
    assert chunks[1].text == "l3 one two three .\nl4 one two three ."


def test_jsonl_record_chunks_point_at_the_record_line():
    text = "\n".join(f"r{i} a b c ." for i in range(12))  # escaped newlines inside one record
    doc = Document("d.jsonl", text, {"id": 1}, first_line=7, record=3)
    chunks = chunk_document(doc, word_tokenizer([text]), max_tokens=10)
    assert len(chunks) > 1
    assert {(c.start_line, c.end_line) for c in chunks} == {(7, 7)}
    assert whole_document(doc)[0].start_line == 7


def test_pdf_chunks_carry_their_page(tmp_path):
    make_pdf(tmp_path / "p.pdf", [" ".join(["apple"] * 60), " ".join(["berry"] * 60)])
    [doc] = read_file(tmp_path / "p.pdf", tmp_path)
    chunks = chunk_document(doc, word_tokenizer([doc.text]), max_tokens=25, overlap=0.2)
    pages = [c.page for c in chunks]
    assert pages == sorted(pages) and set(pages) == {1, 2}
    for c in chunks:
        assert c.page == (1 if c.text.startswith("apple") else 2)
    assert whole_document(doc)[0].page == 1


MD = """# Intro
intro intro intro intro intro intro intro intro .

## Setup
setup setup setup setup setup setup setup setup .

Usage
=====
usage usage usage usage usage usage usage usage .

```python
# not a heading
```
after after after after after after after after .
"""


@pytest.mark.parametrize("max_tokens", [5, 8, 13])
def test_heading_is_the_nearest_preceding_one(max_tokens):
    doc = Document("g.md", MD, {})
    chunks = chunk_document(doc, word_tokenizer([MD]), max_tokens=max_tokens, overlap=0.0)
    sections = [(MD.index("# Intro"), "Intro"), (MD.index("## Setup"), "Setup"),
                (MD.index("Usage\n="), "Usage")]  # the fenced '# not a heading' must not count
    assert len(chunks) >= 4
    for c in chunks:
        expected = [title for pos, title in sections if pos <= c.start_char][-1]
        assert c.heading == expected, c.text


def test_whole_document_keeps_provenance():
    doc = Document("g.md", MD, {})
    [c] = whole_document(doc)
    assert (c.text, c.start_line, c.heading, c.page) == (MD.strip(), 1, "Intro", None)
    assert c.end_line == MD.count("\n")
