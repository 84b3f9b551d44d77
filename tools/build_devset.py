"""Build the shipped dev set (genretrieve/data/devset/, BEIR layout) from real packaged text.

Queries are the question headings of the Debian FAQ (package debian-faq 11.1); each one's
relevant document is its own answer section (gain 2) plus any non-question subsections under it
(gain 1), so every label comes from the FAQ's structure, none is written by us. The other FAQ
sections and passages of Python's own reference (`pydoc_data.topics`, CPython 3.11.7) are
distractors. Concessions: "Section 6.1, “<question title>”" cross-references are cut to
"Section 6.1" (otherwise another answer would quote the query verbatim), and the Python
passages come from the running interpreter, so rebuild with 3.11.7 for identical files.

    .venv/bin/python tools/build_devset.py [SRC]   # SRC: `dpkg-deb -x debian-faq_11.1_all.deb SRC` done

The package reads the files (`genretrieve bench retrieval` without a folder: bench/beir.py).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import genretrieve

DEB = "debian-faq=11.1"
FAQ = "usr/share/doc/debian/FAQ"
FAQ_COPYRIGHT = "usr/share/doc/debian-faq/copyright"
OUT = Path(genretrieve.__file__).resolve().parent / "data" / "devset"  # what bench retrieval reads
NUMBER = re.compile(r"^(?:Chapter\s)?(\d+(?:\.\d+)*)\.\s+(.+)$", re.S)
XREF = re.compile(r"(Section\s[\d.]*\d),\s“[^”]*”")  # \s: the FAQ puts a no-break space after "Section"
BLOCKS = ["p", "pre", "li", "dt", "dd", "tr", "div", "blockquote", "h1", "h2", "h3", "h4", "h5"]
UNDERLINE = re.compile(r"^(\S[^\n]*)\n([*=\-~^])\2+$", re.M)
PASSAGE_WORDS = 180  # ~250 tokens: one chunk of a typical index


@dataclass
class Section:
    number: str
    heading: str
    chapter: str
    text: str

    @property
    def is_question(self) -> bool:
        return "." in self.number and "?" in self.heading  # chapter intros are never queries


def paragraphs(text: str) -> str:
    """One line per paragraph, paragraphs split by a blank line (pre blocks are flattened too)."""
    paras = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in paras if p)


def own_text(container) -> str:
    """Text of a chapter or section without its title, table of contents and nested sections."""
    parts = []
    for child in container.find_all(recursive=False):
        classes = child.get("class") or []
        if "titlepage" in classes or "toc" in classes or "section" in classes:
            continue
        for block in child.find_all(BLOCKS) + [child]:
            block.append("\n\n")  # paragraph breaks survive get_text
        parts.append(child.get_text())
    return paragraphs(XREF.sub(r"\1", "\n\n".join(parts)))


def parse_faq(folder: Path) -> list[Section]:
    """Chapter intros and numbered entries of the FAQ's HTML chapters, in the index's order."""
    from bs4 import BeautifulSoup

    index = (folder / "index.en.html").read_text(encoding="utf-8")
    files = list(dict.fromkeys(re.findall(r'href="([a-z-]+\.en\.html)', index)))
    sections = []
    for name in files:
        soup = BeautifulSoup((folder / name).read_text(encoding="utf-8"), "html.parser")
        for container in soup.select("div.chapter, div.chapter div.section"):
            title = container.find(class_="titlepage").find(["h1", "h2", "h3", "h4", "h5"])
            match = NUMBER.match(" ".join(title.get_text().split()))
            if match is None:
                raise ValueError(f"{name}: unnumbered heading {title.get_text()!r}")
            number, heading = match.groups()
            if "chapter" in (container.get("class") or []):
                chapter = heading
            sections.append(Section(number, heading, chapter, own_text(container)))
    return sections


def faq_set(sections: list[Section]) -> tuple[list[dict], list[dict], list[tuple[str, str, int]]]:
    docs = [{"_id": f"faq-{s.number}", "title": s.chapter, "text": s.text} for s in sections if s.text]
    has_doc = {d["_id"] for d in docs}
    queries, qrels = [], []
    for s in sections:
        if not s.is_question:
            continue
        judged = [(f"faq-{s.number}", 2)]
        # non-question subsections are part of this answer (e.g. 12.2 -> 12.2.1 "Mailing lists")
        judged += [(f"faq-{c.number}", 1) for c in sections
                   if c.number.startswith(s.number + ".") and not c.is_question
                   and not any(q.is_question and c.number.startswith(q.number + ".") and len(q.number) > len(s.number)
                               for q in sections)]
        judged = [(doc, gain) for doc, gain in judged if doc in has_doc]
        if judged:
            qid = f"q-{s.number}"
            queries.append({"_id": qid, "text": " ".join(s.heading.split())})
            qrels += [(qid, doc, gain) for doc, gain in judged]
    return docs, queries, qrels


def chunks(text: str, words: int = PASSAGE_WORDS) -> list[str]:
    """Consecutive runs of whole paragraphs of about `words` words (a longer paragraph stays whole)."""
    out, current = [], []
    for para in text.split("\n\n"):
        if current and sum(len(p.split()) for p in current) + len(para.split()) > words:
            out.append("\n\n".join(current))
            current = []
        current.append(para)
    return out + (["\n\n".join(current)] if current else [])


def python_passages(limit: int | None = None) -> list[dict]:
    """Passages of the Python reference topics: each section's 1st passage, then each one's 2nd, ..."""
    from pydoc_data.topics import topics

    per_section, seen = [], set()
    for key in sorted(topics):
        marks = list(UNDERLINE.finditer(topics[key]))
        for i, mark in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(topics[key])
            slug = re.sub(r"\W+", "-", mark.group(1).lower()).strip("-")[:40]
            rows = []
            for j, text in enumerate(chunks(paragraphs(topics[key][mark.end():end]))):
                if len(text.split()) >= 30 and text not in seen:  # topics repeat some sections verbatim
                    seen.add(text)
                    rows.append({"_id": f"py-{key}-{i}.{j}-{slug}", "title": mark.group(1).strip(), "text": text})
            per_section.append(rows)
    # round robin over sections, so the distractors cover every topic rather than the first few
    interleaved = [rows[j] for j in range(max(map(len, per_section))) for rows in per_section if j < len(rows)]
    return interleaved[:limit]  # CPython 3.11.7 gives 378 distinct passages: all are kept


def write(folder: Path, docs: list[dict], queries: list[dict], qrels: list[tuple[str, str, int]]) -> None:
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    dump = lambda rows: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    (folder / "corpus.jsonl").write_text(dump(docs), encoding="utf-8")
    (folder / "queries.jsonl").write_text(dump(queries), encoding="utf-8")
    tsv = "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{g}\n" for q, d, g in qrels)
    (folder / "qrels" / "test.tsv").write_text(tsv, encoding="utf-8")


def unpack(src: Path | None, tmp: Path) -> Path:
    if src is not None:
        return src
    subprocess.run(["apt-get", "download", DEB], cwd=tmp, check=True)
    deb = next(tmp.glob("debian-faq_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "x")], check=True)
    return tmp / "x"


def build(src: Path | None = None, out: Path = OUT) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = unpack(src, Path(tmp))
        sections = parse_faq(root / FAQ)
        docs, queries, qrels = faq_set(sections)
        docs += python_passages()
        write(out, docs, queries, qrels)
        (out / "LICENSES").mkdir(exist_ok=True)
        (out / "LICENSES" / "debian-faq.copyright").write_bytes((root / FAQ_COPYRIGHT).read_bytes())
    python_licence = Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
    (out / "LICENSES" / "Python-PSF-LICENSE.txt").write_bytes(python_licence.read_bytes())
    return {"documents": len(docs), "faq_documents": sum(d["_id"].startswith("faq-") for d in docs),
            "queries": len(queries), "judgements": len(qrels), "python": sys.version.split()[0]}


if __name__ == "__main__":
    print(json.dumps(build(Path(sys.argv[1]) if len(sys.argv) > 1 else None)))
