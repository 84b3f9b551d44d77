"""Rebuild samples/docs/ (and samples/LICENSES/) from real, licensed text. Deterministic.

    .venv/bin/python samples/build_samples.py [SRC]

SRC: a folder into which the two .debs below were unpacked (`dpkg-deb -x PKG.deb SRC`).
Without SRC they are fetched with `apt-get download` (needs Debian's package index, i.e. a
prior `apt-get update`) into a temporary folder. Python reference text comes from the running
interpreter's `pydoc_data.topics` (the docs shipped here were built with CPython 3.11.7).
"""
import datetime, gzip, json, re, shutil, subprocess, sys, tempfile, textwrap
from pathlib import Path

from bs4 import BeautifulSoup
from fpdf import FPDF
from pydoc_data.topics import topics

HERE = Path(__file__).resolve().parent
OUT, LIC = HERE / "docs", HERE / "LICENSES"
DEBS = ["debian-faq=11.1", "dict-foldoc=20230119-1"]
FAQ = "usr/share/doc/debian/FAQ"
FAQ_HTML = ["basic-defs", "choosing", "compatibility", "customizing", "getting-debian",
            "pkg-basics", "pkgtools", "software", "uptodate"]
FAQ_TXT = {6: "ftparchives", 10: "kernel", 13: "contributing", 14: "redistributing",
           15: "nextrelease"}  # chapter number of debian-faq.en.txt -> file stem
FAQ_PDF = "support"
PY = {".rst": ["class", "context-managers", "exceptions", "function", "import", "raise", "try", "with"],
      ".md": ["assignment", "for", "formatstrings", "lambda", "truth", "typesmapping", "while", "yield"],
      ".txt": ["async", "comparisons", "debugger", "naming", "string-methods"]}
FOLDOC = ["algorithm", "application program interface", "b-tree", "binary search", "cache",
          "checksum", "closure", "compiler", "concurrency", "cron", "daemon", "deadlock",
          "debugger", "encryption", "environment variable", "file system", "firewall", "fork",
          "garbage collection", "hash table", "heap", "inheritance", "interpreter", "kernel",
          "linked list", "memoisation", "mutual exclusion", "object-oriented programming",
          "pipe", "pointer", "polymorphism", "process", "proxy server", "public-key encryption",
          "quicksort", "race condition", "recursion", "regular expression", "semaphore",
          "symbolic link", "multithreading", "unicode", "virtual memory"]
UNDERLINE = re.compile(r"^(\S[^\n]*)\n([*=\-~^])\2+$", re.M)


def faq_html(src, stem):
    soup = BeautifulSoup((src / FAQ / f"{stem}.en.html").read_bytes(), "html.parser")
    chapter = soup.find("div", class_="chapter")
    for img in chapter.find_all("img"):
        img.decompose()
    title = soup.title.get_text()
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"</head>\n<body>\n{chapter}\n</body></html>\n")


def faq_pdf(src, stem, dest):
    soup = BeautifulSoup((src / FAQ / f"{stem}.en.html").read_bytes(), "html.parser")
    chapter = soup.find("div", class_="chapter")
    chapter.find("div", class_="toc").decompose()
    latin = lambda s: s.translate(str.maketrans("‘’“”–—…", "''\"\"--.")).encode("latin-1", "replace").decode("latin-1")
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime.datetime(2022, 5, 31, tzinfo=datetime.timezone.utc))
    pdf.set_title(latin(" ".join(soup.title.get_text().split())))
    pdf.set_author("Debian FAQ authors (debian-faq 11.1)")
    pdf.set_margins(22, 20)
    pdf.add_page()
    for el in chapter.find_all(["h1", "h2", "h3", "h4", "p", "pre"]):
        if el.name == "p" and el.find_parent("pre"):
            continue
        if el.name == "pre":
            pdf.set_font("Courier", size=9)
            pdf.multi_cell(0, 4.5, latin(el.get_text().strip("\n")))
        else:
            size, style = {"h1": (16, "B"), "h2": (12, "B"), "h3": (11, "B"), "h4": (10.5, "B")}.get(el.name, (10.5, ""))
            pdf.set_font("Helvetica", style, size)
            bullet = "-  " if el.parent.name == "li" else ""
            pdf.multi_cell(0, size * 0.5, latin(bullet + " ".join(el.get_text().split())), align="L")
        pdf.ln(2.5)
    pdf.output(str(dest))


def faq_txt_chapters(src):
    text = gzip.open(src / FAQ / "debian-faq.en.txt.gz", "rt", encoding="utf-8").read()
    parts = re.split(r"^(?=Chapter\s\d+\.\s)", text, flags=re.M)[1:]
    return {int(p.split()[1].rstrip(".")): p.strip() + "\n" for p in parts}


def py_topic(name, suffix):
    text = topics[name].strip() + "\n"
    if suffix == ".md":  # Sphinx text output -> Markdown headings
        level = {"*": "#", "=": "##", "-": "###", "~": "####", "^": "####"}
        text = UNDERLINE.sub(lambda m: f"{level[m.group(2)]} {m.group(1)}", text)
    return text


def foldoc_records(src):
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    num = lambda s: sum(b64.index(c) * 64 ** i for i, c in enumerate(reversed(s)))
    index, data = {}, gzip.open(src / "usr/share/dictd/foldoc.dict.dz").read()
    for line in (src / "usr/share/dictd/foldoc.index").read_text(encoding="utf-8").splitlines():
        word, off, size = line.split("\t")
        index.setdefault(word, []).append(data[num(off):num(off) + num(size)].decode("utf-8"))
    for term in sorted(FOLDOC):  # the index is case-folded: prefer the entry spelt exactly so
        entries = index[term]
        entry = next((e for e in entries if term in e.partition("\n\n")[0].split("\n")), entries[0])
        head, _, body = entry.partition("\n\n")
        body = textwrap.dedent(body).strip()
        subjects = re.match(r"(?:1\. )?<([^>]+)>", body)
        updated = re.search(r"\n\((\d{4}-\d\d-\d\d)\)$", body)
        body = re.sub(r"\n\(\d{4}-\d\d-\d\d\)$", "", body)
        body = re.sub(r"^(1\. )?<[^>]+>\s*", r"\1", body).replace("{", "").replace("}", "")
        paras = [p if p.startswith(" ") else " ".join(p.split()) for p in body.split("\n\n")]
        names = head.split("\n")
        yield {"text": "\n\n".join(paras).strip(), "title": names[0], "aliases": names[1:],
               "subjects": subjects.group(1).split(", ") if subjects else [],
               "updated": updated.group(1) if updated else None,
               "source": "FOLDOC, The Free On-line Dictionary of Computing (dict-foldoc 20230119-1)"}


def build(src):
    shutil.rmtree(OUT, ignore_errors=True)
    for sub in ("debian-faq", "python-reference", "foldoc"):
        (OUT / sub).mkdir(parents=True)
    for stem in FAQ_HTML:
        (OUT / "debian-faq" / f"{stem}.html").write_text(faq_html(src, stem), encoding="utf-8")
    chapters = faq_txt_chapters(src)
    for number, stem in FAQ_TXT.items():
        (OUT / "debian-faq" / f"{stem}.txt").write_text(chapters[number], encoding="utf-8")
    faq_pdf(src, FAQ_PDF, OUT / "debian-faq" / f"{FAQ_PDF}.pdf")
    for suffix, names in PY.items():
        for name in names:
            (OUT / "python-reference" / f"{name}{suffix}").write_text(py_topic(name, suffix), encoding="utf-8")
    with open(OUT / "foldoc" / "definitions.jsonl", "w", encoding="utf-8") as fh:
        for record in foldoc_records(src):
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    LIC.mkdir(exist_ok=True)
    shutil.copyfile(src / "usr/share/doc/debian-faq/copyright", LIC / "debian-faq.copyright")
    shutil.copyfile(src / "usr/share/doc/dict-foldoc/copyright", LIC / "dict-foldoc.copyright")
    shutil.copyfile("/usr/share/common-licenses/GFDL-1.2", LIC / "GFDL-1.2.txt")
    shutil.copyfile(Path(sys.base_prefix) / f"lib/python{sys.version_info[0]}.{sys.version_info[1]}/LICENSE.txt",
                    LIC / "Python-PSF-LICENSE.txt")


def main():
    if len(sys.argv) > 1:
        return build(Path(sys.argv[1]))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", *DEBS], cwd=tmp, check=True)
        for deb in sorted(Path(tmp).glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), f"{tmp}/src"], check=True)
        build(Path(tmp) / "src")


if __name__ == "__main__":
    main()
