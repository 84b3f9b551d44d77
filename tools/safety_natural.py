"""Build genretrieve/data/safety/natural_docs.txt: real questions from packaged manuals and FAQs.

The safety probe's natural negatives came from two programming FAQs (Python, Perl); a filter fitted
on them learned what programmers ask. These are the question headings of FAQs and help pages of
other tools and domains, as shipped by Debian 12 (`apt-get download`, cached with provenance by
genretrieve.datasets): terminals and shells (xterm, zsh, screen, nano), video (ffmpeg), mail
(fetchmail), databases (SQLite), version control (git) and the GNOME desktop's user help. The
Debian FAQ is not used: the retrieval dev set is built from it. Questions that copy or lightly
edit a dev-set query, a borderline prompt or an AdvBench prompt (when cached) are dropped.

Rebuild: .venv/bin/python tools/safety_natural.py
"""
from __future__ import annotations

import gzip
import hashlib
import html
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genretrieve import datasets  # noqa: E402
from genretrieve.errors import GenretrieveError  # noqa: E402
from genretrieve.exclusion import ExclusionIndex  # noqa: E402
from genretrieve.safety.data import BORDERLINE, NATURAL_DOCS, read_sections  # noqa: E402

GNOME = "usr/share/help/C/gnome-help"
# (package, version, licence, files); gnome-user-docs' pages are listed from the package at build time
SOURCES = [
    ("xterm", "379-1", "MIT/X11", ["usr/share/doc/xterm/xterm.faq.html"]),
    ("ffmpeg-doc", "7:5.1.9-0+deb12u1", "LGPL-2.1-or-later", ["usr/share/doc/ffmpeg/manual/faq.html"]),
    ("zsh-doc", "5.9-4", "Zsh (MIT-like)", [f"usr/share/doc/zsh-common/html/FAQ0{i}.html" for i in range(1, 7)]),
    ("nano", "7.2-1+deb12u1", "GPL-3.0-or-later", ["usr/share/doc/nano/faq.html"]),
    ("git-doc", "1:2.39.5-0+deb12u3", "GPL-2.0", ["usr/share/doc/git-doc/gitfaq.txt"]),
    ("fetchmail", "6.4.37-1", "GPL-2.0-or-later", ["usr/share/doc/fetchmail/fetchmail-FAQ.html"]),
    ("screen", "4.9.0-4", "GPL-3.0-or-later", ["usr/share/doc/screen/FAQ.gz"]),
    ("sqlite3-doc", "3.40.1-2+deb12u2", "public domain", ["usr/share/doc/sqlite3/faq.html"]),
]
GNOME_DOCS = ("gnome-user-docs", "43.0-2", "CC-BY-SA-3.0")
STARTS = re.compile(r"^(how|what|why|can|is|are|does|do|where|when|which|who|should|will|i|my|it|there|may|could|would|"
                    r"if|in|after|whenever)\b", re.I)


def plain_text(path: Path) -> str:
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8", "replace")
    if path.suffix in (".html", ".page"):
        text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", text)
        # block-level tags end a line, so a heading never runs into the paragraph after it
        text = re.sub(r"(?i)<(br|p|h\d|li|dt|dd|div|title|tr|pre)\b[^>]*>|</(h\d|p|li|dt|title|a|div|pre)>", "\n", text)
        text = html.unescape(re.sub(r"<[^>]+>", "", text))
    if path.name == "FAQ.gz":  # screen: "Q: ..." paragraphs wrapped over several lines
        text = "\n".join(" ".join(m.split()) for m in re.findall(r"Q:\s*(.*?\?)", text, flags=re.S))
    return text


def questions(text: str) -> list[str]:
    """Lines that are questions: 4-30 words ending in '?', starting like a question, numbering stripped."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"::$", "", line.strip())  # asciidoc term lists (gitfaq)
        line = re.sub(r"^([A-Z]\d+\.|[\d.()\-*#=:\s]+|Q[:.])\s*", "", line)  # "G1.", "3.2", "Q:"
        line = " ".join(line.replace("’", "'").split())
        if line.endswith("?") and 4 <= len(line.split()) <= 30 and line[0].isupper() and STARTS.match(line):
            out.append(line)
    return out


def protected() -> ExclusionIndex:
    data = ROOT / "genretrieve" / "data"
    texts = [json.loads(line)["text"] for line in (data / "devset" / "queries.jsonl").open()]
    texts += [t for _, t in read_sections(BORDERLINE)]
    try:
        texts += datasets.advbench(download=False)
    except GenretrieveError:
        print("AdvBench is not cached: checked against the dev set and the borderline set only", file=sys.stderr)
    return ExclusionIndex(texts)


def deb_listing(package: str, version: str, folder: str, suffix: str) -> list[str]:
    """Paths of the package's files under `folder` ending in `suffix` (apt-get download + dpkg-deb -c)."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o777)  # apt drops privileges to _apt when it can
        subprocess.run(["apt-get", "download", "-q", f"{package}={version}"], cwd=tmp, check=True, capture_output=True)
        listing = subprocess.run(["dpkg-deb", "-c", str(next(Path(tmp).glob("*.deb")))], capture_output=True, text=True,
                                 check=True).stdout
    paths = [line.split()[-1].removeprefix("./") for line in listing.splitlines()]
    return sorted(p for p in paths if p.startswith(folder + "/") and p.endswith(suffix))


def build(out: Path = NATURAL_DOCS) -> int:
    header, found = [], []
    sources = SOURCES + [(*GNOME_DOCS, deb_listing(*GNOME_DOCS[:2], GNOME, ".page"))]
    for package, version, licence, files in sources:
        root = datasets.fetch_deb_files(package, version, files, licence)
        got = [q for name in files for q in questions(plain_text(root / name))]
        found += got
        digest = hashlib.sha256(b"".join((root / name).read_bytes() for name in files)).hexdigest()
        header.append(f"# {package} {version} ({licence}): {len(set(got))} questions; sources sha256 {digest}")
    guard = protected()
    kept = [q for q in dict.fromkeys(found) if not guard.hits(q)]
    out.write_text("\n".join(["# Question headings of packaged FAQs and help pages (Debian 12), one per line",
                              *header, "# Rebuild: .venv/bin/python tools/safety_natural.py", *kept]) + "\n",
                   encoding="utf-8")
    return len(kept)


if __name__ == "__main__":
    print(build())
