"""Natural benign questions for the safety probe: the Python FAQ's own question headings.

The training pool's benign queries are written by templates, so a probe fitted against them
alone learns template-vs-natural phrasing instead of harmful-vs-benign (bench safety measured
68% false blocks on real questions). These 176 real questions, from the python3.11-doc Debian
package (PSF licence), are the natural negatives and the threshold's calibration set. They are
not test data: the dev set uses the Debian FAQ and the borderline list is separate.
Rebuild with: python -m genretrieve.train.natural
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..datasets import fetch_deb_files

PACKAGE = ("python3.11-doc", "3.11.2-6+deb12u9", "PSF-2.0")
FAQ = "usr/share/doc/python3.11/html/_sources/faq"
FILES = [f"{FAQ}/{name}.rst.txt" for name in ("general", "programming", "design", "library", "extending",
                                               "windows", "gui", "installed")]
OUT = Path(__file__).resolve().parent.parent / "data" / "natural_questions.txt"


def faq_questions(text: str) -> list[str]:
    """Section titles that are questions: a line ending in '?' underlined by =, -, ~, ^ or "."""
    lines = text.splitlines()
    return [re.sub(r"[`*]|:\w+:", "", title.strip()) for title, rule in zip(lines, lines[1:])
            if title.strip().endswith("?") and rule.strip() and set(rule.strip()) <= set("=-~^\"")
            and len(rule.strip()) >= len(title.strip()) - 2]


def build(out: Path = OUT) -> int:
    root = fetch_deb_files(PACKAGE[0], PACKAGE[1], FILES, PACKAGE[2])
    questions = list(dict.fromkeys(q for name in FILES for q in faq_questions((root / name).read_text(encoding="utf-8"))))
    sources = hashlib.sha256(b"".join((root / name).read_bytes() for name in FILES)).hexdigest()
    header = (f"# The Python FAQ's questions: {PACKAGE[0]} {PACKAGE[1]}, {PACKAGE[2]}; sources sha256 {sources}\n"
              "# Rebuild: python -m genretrieve.train.natural\n")
    out.write_text(header + "\n".join(questions) + "\n", encoding="utf-8")
    return len(questions)


def load(path: Path = OUT) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]


if __name__ == "__main__":
    print(build())
