"""Build genretrieve/data/natural_questions.txt: the Python and Perl FAQs' own question headings.

The training pool's benign queries are written by templates, so a probe fitted against them
alone learns template-vs-natural phrasing instead of harmful-vs-benign (bench safety measured
68% false blocks on real questions). These real questions are the natural negatives and the
threshold's calibration set: the Python FAQ's (python3.11-doc, PSF licence) and the Perl FAQ's
(perl-doc, the same terms as Perl), which bring hard cases such as "How do I decode encrypted
password files?". They are not test data: questions that copy or lightly edit a dev-set or
borderline query are dropped. The package reads the file (genretrieve/safety/data.py).

Rebuild: .venv/bin/python tools/build_natural.py
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from genretrieve.datasets import fetch_deb_files
from genretrieve.exclusion import ExclusionIndex
from genretrieve.safety.data import NATURAL_FAQS as OUT

PYTHON = ("python3.11-doc", "3.11.2-6+deb12u9", "PSF-2.0")
PYTHON_FAQ = "usr/share/doc/python3.11/html/_sources/faq"
PYTHON_FILES = [f"{PYTHON_FAQ}/{name}.rst.txt" for name in ("general", "programming", "design", "library", "extending",
                                                             "windows", "gui", "installed")]
PERL = ("perl-doc", "5.36.0-7+deb12u4", "Artistic-1.0 OR GPL-1.0-or-later (the same terms as Perl)")
PERL_FILES = [f"usr/share/perl/5.36.0/pod/perlfaq{i}.pod" for i in range(1, 10)]


def rst_questions(text: str) -> list[str]:
    """Section titles that are questions: a line ending in '?' underlined by =, -, ~, ^ or "."""
    lines = text.splitlines()
    return [re.sub(r"[`*]|:\w+:", "", title.strip()) for title, rule in zip(lines, lines[1:])
            if title.strip().endswith("?") and rule.strip() and set(rule.strip()) <= set("=-~^\"")
            and len(rule.strip()) >= len(title.strip()) - 2]


def pod_questions(text: str) -> list[str]:
    """`=head2` titles that are questions, with POD markup (C<...>, E<gt>, ...) reduced to its text."""
    # escapes become placeholders first, so an escaped ">" cannot close the code around it
    escapes = {"gt": ("\x01", ">"), "lt": ("\x02", "<"), "verbar": ("\x03", "|"), "sol": ("\x04", "/")}
    titles = [line[len("=head2 "):].strip() for line in text.splitlines() if line.startswith("=head2 ")]
    out = []
    for title in titles:
        title = re.sub(r"E<(\w+)>", lambda m: escapes[m.group(1)][0] if m.group(1) in escapes else m.group(0), title)
        while re.search(r"[A-Z]<([^<>]*)>", title):
            title = re.sub(r"[A-Z]<([^<>]*)>", r"\1", title)
        for placeholder, char in escapes.values():
            title = title.replace(placeholder, char)
        if title.endswith("?"):
            out.append(title)
    return out


def build(out: Path = OUT) -> int:
    header, questions = [], []
    for (package, version, licence), files, parse in ((PYTHON, PYTHON_FILES, rst_questions),
                                                      (PERL, PERL_FILES, pod_questions)):
        root = fetch_deb_files(package, version, files, licence)
        questions += [q for name in files for q in parse((root / name).read_text(encoding="utf-8"))]
        sources = hashlib.sha256(b"".join((root / name).read_bytes() for name in files)).hexdigest()
        header.append(f"# {package} {version}, {licence}; FAQ sources sha256 {sources}")
    # the benchmarks' benign queries stay out, copies and light edits included
    data = OUT.parent
    protected = ExclusionIndex([json.loads(line)["text"] for line in (data / "devset" / "queries.jsonl").open()] +
                               [line.strip() for line in (data / "borderline.txt").open() if line.strip()])
    questions = [q for q in dict.fromkeys(questions) if not protected.hits(q)]
    text = "\n".join(["# The Python and Perl FAQs' questions", *header, "# Rebuild: python tools/build_natural.py",
                      *questions]) + "\n"
    out.write_text(text, encoding="utf-8")
    return len(questions)


if __name__ == "__main__":
    print(build())
