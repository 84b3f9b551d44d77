"""Readers: what text and provenance a user gets back from each kind of file in a folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genretrieve.index.readers import (
    Document,
    UnreadableFile,
    is_supported,
    iter_files,
    read_file,
)
from tests.helpers import make_pdf


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def rels(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in iter_files(root)]


# ------------------------------------------------------------------ walking


def test_iter_files_honours_nested_ignore_files_and_skips_hidden_dirs(tmp_path):
    write(tmp_path / ".gitignore", "*.log\nbuild/\n*.draft.md\n")
    write(tmp_path / "a.md", "a")
    write(tmp_path / "run.log", "noise")
    write(tmp_path / "build" / "out.txt", "generated")
    write(tmp_path / ".git" / "config.txt", "git internals")
    write(tmp_path / "secret.md", "root secret stays: the pattern below is relative to sub/")
    write(tmp_path / "sub" / ".genretrieveignore", "secret.md\n!keep.draft.md\n")
    write(tmp_path / "sub" / "secret.md", "hidden")
    write(tmp_path / "sub" / "keep.draft.md", "re-included by the deeper ignore file")
    write(tmp_path / "sub" / "other.draft.md", "still ignored by the root pattern")
    write(tmp_path / "sub" / "deep" / "b.txt", "b")

    assert rels(tmp_path) == [
        ".gitignore",
        "a.md",
        "secret.md",
        "sub/.genretrieveignore",
        "sub/deep/b.txt",
        "sub/keep.draft.md",
    ]


def test_iter_files_is_deterministic_and_sorted(tmp_path):
    for name in ["z.txt", "b/c.txt", "a.txt", "b/a.txt"]:
        write(tmp_path / name, name)
    assert rels(tmp_path) == ["a.txt", "b/a.txt", "b/c.txt", "z.txt"]


def test_single_file_root_yields_itself_with_its_name_as_path(tmp_path):
    f = write(tmp_path / "notes.md", "hello")
    assert list(iter_files(f)) == [f]
    assert [d.path for d in read_file(f, f)] == ["notes.md"]


# ------------------------------------------------------------------ support


def test_is_supported_by_suffix_case_insensitive_and_rejects_binary(tmp_path):
    assert is_supported(write(tmp_path / "README.MD", "# hi"))
    assert not is_supported(write(tmp_path / "report.docx", "x"))
    assert not is_supported(write(tmp_path / "blob.txt", b"abc\x00\x01\x02" * 100))
    # UTF-16 has NULs too, but its BOM marks it as text.
    assert is_supported(write(tmp_path / "wide.txt", "hello".encode("utf-16")))


def test_unsupported_suffix_raises_value_error(tmp_path):
    with pytest.raises(ValueError):
        read_file(write(tmp_path / "x.docx", "x"), tmp_path)


@pytest.mark.parametrize("name", ["empty.txt", "empty.pdf", "empty.jsonl", "blank.md"])
def test_empty_files_give_no_documents(tmp_path, name):
    f = write(tmp_path / name, "  \n\n" if name == "blank.md" else b"")
    assert read_file(f, tmp_path) == []


# ------------------------------------------------------------------ text


def test_markdown_path_is_relative_posix_and_newlines_normalised(tmp_path):
    f = write(tmp_path / "docs" / "guide.md", b"\xef\xbb\xbf# Guide\r\n\r\nStep one.\rStep two.\r\n")
    [doc] = read_file(f, tmp_path)
    assert doc == Document("docs/guide.md", "# Guide\n\nStep one.\nStep two.\n", {})


def test_latin1_text_is_decoded_not_mangled(tmp_path):
    text = "Café crème brûlée, naïve résumé à la carte.\nÉté français, déjà vu.\n"
    f = write(tmp_path / "old.txt", text.encode("latin-1"))
    [doc] = read_file(f, tmp_path)
    assert doc.text == text


def test_unreadable_path_raises_unreadable_file(tmp_path):
    # A directory named like a text file fails like a permission error would, even as root.
    (tmp_path / "weird.txt").mkdir()
    with pytest.raises(UnreadableFile, match="weird.txt"):
        read_file(tmp_path / "weird.txt", tmp_path)


# ------------------------------------------------------------------ html

HTML = """<!DOCTYPE html>
<html><head><title>  Widget
  Manual </title><style>body { color: red }</style></head>
<body>
<nav><a href="/">Home</a> | <a href="/x">NAVLINK</a></nav>
<header>SITEBANNER</header>
<script>var TRACKER = 1;</script>
<!-- a COMMENT -->
<h1>Widget   Manual</h1>
<p>The widget
   turns <b>on</b> with the switch.</p>
<h2>Care</h2>
<ul><li>Keep it dry.</li><li>Keep it cool.</li></ul>
<table><tr><td>size</td><td>10cm</td></tr></table>
<pre>def f():
    return 1</pre>
<footer>COPYRIGHT</footer>
</body></html>
"""


def test_html_keeps_prose_and_headings_drops_chrome(tmp_path):
    [doc] = read_file(write(tmp_path / "m.html", HTML), tmp_path)
    assert doc.metadata == {"title": "Widget Manual"}
    for noise in ["NAVLINK", "SITEBANNER", "TRACKER", "COMMENT", "COPYRIGHT", "color: red"]:
        assert noise not in doc.text
    assert doc.text.startswith("# Widget Manual\n")  # <head> text stays out of the body
    lines = doc.text.split("\n")
    assert "## Care" in lines
    assert "The widget turns on with the switch." in lines
    assert "Keep it dry.\nKeep it cool." in doc.text  # list items: one per line
    assert "size 10cm" in lines
    assert "    return 1" in lines  # <pre> indentation survives
    assert "\n\n\n" not in doc.text


# ------------------------------------------------------------------ pdf


def test_pdf_text_with_page_offsets(tmp_path):
    f = tmp_path / "two.pdf"
    make_pdf(f, ["Alpha text on page one.", "Beta text on page two."])
    [doc] = read_file(f, tmp_path)
    assert doc.path == "two.pdf"
    assert doc.pages is not None and len(doc.pages) == 2 and doc.pages[0] == 0
    first, second = doc.text[: doc.pages[1]], doc.text[doc.pages[1] :]
    assert "Alpha text on page one." in first and "Beta" not in first
    assert second.startswith("Beta text on page two.")


def test_corrupt_pdf_is_unreadable(tmp_path):
    import random

    f = write(tmp_path / "bad.pdf", random.Random(0).randbytes(2000))
    with pytest.raises(UnreadableFile, match="bad.pdf"):
        read_file(f, tmp_path)


def test_password_protected_pdf_is_unreadable_but_owner_only_lock_is_fine(tmp_path):
    from fpdf import FPDF
    from fpdf.enums import EncryptionMethod

    def locked(name: str, user_password: str) -> Path:
        pdf = FPDF()
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.cell(0, 6, "Locked words.")
        pdf.set_encryption(
            owner_password="owner", user_password=user_password,
            encryption_method=EncryptionMethod.RC4,
        )
        pdf.output(str(tmp_path / name))
        return tmp_path / name

    with pytest.raises(UnreadableFile, match="password"):
        read_file(locked("user.pdf", "hunter2"), tmp_path)
    [doc] = read_file(locked("owner.pdf", ""), tmp_path)
    assert "Locked words." in doc.text


# ------------------------------------------------------------------ jsonl


def test_jsonl_one_document_per_record_with_metadata_and_line(tmp_path):
    lines = [
        json.dumps({"text": "first record", "id": 7, "tags": ["a"]}),
        "",
        json.dumps({"text": "second record", "source": "wiki"}),
    ]
    [a, b] = read_file(write(tmp_path / "data" / "c.jsonl", "\n".join(lines) + "\n"), tmp_path)
    assert (a.path, a.text, a.metadata, a.first_line, a.record) == (
        "data/c.jsonl", "first record", {"id": 7, "tags": ["a"]}, 1, 0,
    )
    assert (b.text, b.metadata, b.first_line, b.record) == ("second record", {"source": "wiki"}, 3, 1)


@pytest.mark.parametrize("bad", ["{not json", json.dumps({"body": "no text field"})])
def test_jsonl_bad_line_is_reported_with_its_number(tmp_path, bad):
    content = json.dumps({"text": "ok"}) + "\n\n" + bad + "\n"
    with pytest.raises(UnreadableFile, match="line 3"):
        read_file(write(tmp_path / "c.jsonl", content), tmp_path)
