"""Read a folder of documents into plain text with provenance (path, page offsets, record line).

Each format goes through one stdlib-or-declared-dependency path: UTF-8 with a charset_normalizer
fallback for plain text, BeautifulSoup's stdlib parser for HTML (headings become markdown '#'
lines so the chunker can see them; <pre> blocks are fenced so code lines never read as headings),
pypdf for PDF, json for JSONL. Texinfo navigation lines ("Next: x, Previous: y, Up: z") are
blanked, keeping line numbers. Every input left out is named with its reason (`skip_reason`,
`iter_files(skipped=...)`); a JSONL file keeps its good records and names its bad lines when the
caller collects `problems`. Concessions: PDFs without a text layer (scans) are reported as
unreadable rather than OCR'd, and nested ignore files are honoured but git's global/.git/info
excludes are not.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

SUPPORTED_SUFFIXES = {".txt", ".md", ".rst", ".html", ".htm", ".pdf", ".jsonl"}
_TEXT_SUFFIXES = SUPPORTED_SUFFIXES - {".pdf"}
_IGNORE_FILES = (".gitignore", ".genretrieveignore")
_SNIFF_BYTES = 8192
# UTF-16/32 text legitimately contains NUL bytes; a BOM tells it apart from binary.
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")
_CHAOS_TIE = 0.1  # charset_normalizer "chaos" gap within which cp1252 is preferred


class UnreadableFile(Exception):
    """A supported file that could not be read (corrupt, permission). Message says why."""


@dataclass
class Document:
    path: str  # posix path relative to the indexed root
    text: str
    metadata: dict = field(default_factory=dict)  # jsonl: other fields; html: {"title": ...}
    pages: list[int] | None = None  # pdf: char offset in `text` where page i+1 starts
    first_line: int = 1  # jsonl: line of the record in the file
    record: int | None = None  # jsonl: 0-based record index within the file


# ---------------------------------------------------------------- walking


@dataclass
class _IgnoreLevel:
    base: str  # posix dir relative to root, "" for root itself
    spec: pathspec.GitIgnoreSpec


def _load_ignores(dirpath: Path, base: str) -> _IgnoreLevel | None:
    lines: list[str] = []
    for name in _IGNORE_FILES:
        try:
            lines += (dirpath / name).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:  # absent (the usual case) or unreadable: nothing to ignore
            continue
    return _IgnoreLevel(base, pathspec.GitIgnoreSpec.from_lines(lines)) if lines else None


def _ignored(rel: str, levels: list[_IgnoreLevel]) -> bool:
    """Git semantics: the deepest ignore file with an opinion wins (so '!x' can re-include)."""
    verdict = False
    for level in levels:
        sub = rel[len(level.base) + 1 :] if level.base else rel
        include = level.spec.check_file(sub).include
        if include is not None:
            verdict = include
    return verdict


def iter_files(root: Path, skipped: list[dict] | None = None) -> Iterator[Path]:
    """Every regular file under root (sorted, deterministic), minus hidden dirs and ignored paths.

    .gitignore and .genretrieveignore in root or any subfolder apply with gitignore semantics,
    patterns relative to the folder holding the ignore file. A single file as root yields itself.
    `skipped` collects {"path", "reason"} for what could not be walked or is not a regular file
    (dangling symlinks, FIFOs, unreadable folders).
    """
    root = Path(root)
    if root.is_file():
        yield root
        return
    skipped = [] if skipped is None else skipped

    def unreadable(error: OSError) -> None:
        rel = Path(error.filename).relative_to(root).as_posix() if error.filename else "."
        skipped.append({"path": f"{rel}/", "reason": f"folder not read: {error.strerror or error}"})

    found: list[tuple[str, Path]] = []
    levels_by_dir: dict[str, list[_IgnoreLevel]] = {}
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        parent = rel_dir.rpartition("/")[0] if "/" in rel_dir else ""
        levels = list(levels_by_dir.get(parent, [])) if rel_dir else []
        level = _load_ignores(here, rel_dir)
        if level:
            levels.append(level)
        levels_by_dir[rel_dir] = levels

        def rel(name: str) -> str:
            return f"{rel_dir}/{name}" if rel_dir else name

        # Pruning in place stops os.walk descending: git never looks inside an ignored dir.
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and not _ignored(rel(d) + "/", levels)
        )
        for name in filenames:
            path = here / name
            if _ignored(rel(name), levels):
                continue
            if path.is_file():
                found.append((rel(name), path))
            elif path.is_symlink() and not path.exists():
                skipped.append({"path": rel(name), "reason": "dangling symlink"})
            else:
                skipped.append({"path": rel(name), "reason": "not a regular file"})
    for _, path in sorted(found, key=lambda item: item[0].split("/")):
        yield path


# ---------------------------------------------------------------- sniffing


def skip_reason(path: Path) -> str | None:
    """Why a file is left out (None: it is read): an unsupported suffix, or NUL bytes in the first 8 KB of text."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        return f"unsupported file type ({suffix or 'no suffix'}; supported: {' '.join(sorted(SUPPORTED_SUFFIXES))})"
    if suffix in _TEXT_SUFFIXES:
        try:
            with open(path, "rb") as fh:
                head = fh.read(_SNIFF_BYTES)
        except OSError:
            return None  # let read_file report the real reason as UnreadableFile
        if b"\x00" in head and not head.startswith(_WIDE_BOMS):
            return "looks binary (NUL bytes; UTF-16/32 text needs a byte-order mark)"
    return None


def is_supported(path: Path) -> bool:
    """Supported suffix (case-insensitive) and, for text formats, no NUL bytes in the first 8 KB."""
    return skip_reason(path) is None


# ---------------------------------------------------------------- reading


def _rel_path(path: Path, root: Path) -> str:
    if path == root:
        return path.name
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise UnreadableFile(f"{path}: {e.strerror or e}") from e


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    import charset_normalizer  # only paid for by non-UTF-8 files

    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        raise UnreadableFile(f"{path}: not UTF-8 and no plausible text encoding found")
    # On short Western text charset_normalizer often ranks Baltic/Central-European code pages
    # a hair above cp1252 ("crème" -> "crčme"); when cp1252 is about as plausible, take it,
    # being by far the commonest legacy encoding (and a superset of printable latin-1).
    for m in matches:
        if "cp1252" in m.could_be_from_charset and m.chaos <= best.chaos + _CHAOS_TIE:
            return data.decode("cp1252")
    return str(best)


# texinfo node headers and navigation lines: "File: x.info,  Node: y,  Next: z,  Up: Top", "Next: a, Previous: b, Up: c"
_NAV_LABELS = r"(?:File|Node|Next|Prev|Previous|Up|Contents|Index)"
_NAVIGATION = re.compile(rf"^[ \t\x1f]*{_NAV_LABELS}:[^\n]*?,[ \t]+{_NAV_LABELS}:[^\n]*$", re.MULTILINE)


def _drop_navigation(text: str) -> str:
    """Blank texinfo navigation lines (kept as empty lines, so line numbers stay true)."""
    return _NAVIGATION.sub("", text)


def _read_text(path: Path, rel: str) -> list[Document]:
    text = _drop_navigation(_normalise_newlines(_decode(_read_bytes(path), path)))
    return [Document(rel, text, {})] if text.strip() else []


# HTML -----------------------------------------------------------

_DROP_TAGS = [
    "script", "style", "noscript", "nav", "header", "footer", "aside", "form", "template",
    "head",  # <title> goes to metadata; <meta>/<link> carry no prose
]
# Paragraph-like blocks get a blank line around them, other blocks just a line break.
_PARA_TAGS = {"p", "pre", "table", "ul", "ol", "dl", "blockquote", "figure", "hr", "body"}
_BLOCK_TAGS = _PARA_TAGS | {
    "li", "div", "tr", "dt", "dd", "section", "article", "main", "figcaption", "details",
    "summary", "caption", "address",
}
_CELL_TAGS = {"td", "th"}
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_WS = re.compile(r"\s+")


def _html_to_text(soup) -> str:
    from bs4.element import NavigableString, PreformattedString

    out: list[str] = []

    def trailing_newlines() -> int:
        tail = "".join(out[-4:]).rstrip(" \t")
        return len(tail) - len(tail.rstrip("\n")) if out else 2

    def ensure_break(n: int) -> None:
        # Nested blocks (<li><p>..</p></li>) must not stack up blank lines.
        missing = n - trailing_newlines()
        if missing > 0:
            out.append("\n" * missing)

    def emit_inline(s: str) -> None:
        if trailing_newlines():
            s = s.lstrip()  # no line starts with the source's indentation
        if s:
            out.append(s)

    # Explicit stack rather than recursion: deeply nested real-world HTML exceeds the
    # interpreter's recursion limit. Items: int = ensure that many newlines, str = literal,
    # tuple = (node, inside_pre).
    stack: list = [(soup, False)]
    while stack:
        item = stack.pop()
        if isinstance(item, int):
            ensure_break(item)
            continue
        if isinstance(item, str):
            out.append(item)
            continue
        node, in_pre = item
        if isinstance(node, NavigableString):
            if isinstance(node, PreformattedString):  # comments, doctype, CDATA, PIs
                continue
            if in_pre:
                out.append(str(node))
            else:
                emit_inline(_WS.sub(" ", str(node)))
            continue
        name = node.name
        if name in _HEADINGS:
            title = _WS.sub(" ", node.get_text()).strip()
            if title:
                ensure_break(2)
                out.append(f"{'#' * _HEADINGS[name]} {title}\n\n")
            continue
        if name == "br":
            out.append("\n")  # always: <br><br> is a deliberate blank line
            continue
        children = [(c, in_pre or name == "pre") for c in node.children]
        if name == "pre" and not in_pre:  # a fence: '#  define X' in code is not a heading to the chunker
            stack.extend([2, "```\n", 1, *reversed(children), 1, "```\n", 2])
            continue
        if name in _BLOCK_TAGS:
            gap = 2 if name in _PARA_TAGS else 1
            stack.append(gap)
            stack.extend(reversed(children))
            stack.append(gap)
        elif name in _CELL_TAGS:
            stack.append(" ")  # keep adjacent cells from gluing into one word
            stack.extend(reversed(children))
        else:
            stack.extend(reversed(children))

    lines = [line.rstrip() for line in "".join(out).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return text.strip("\n")


def _read_html(path: Path, rel: str) -> list[Document]:
    from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning

    data = _read_bytes(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            # Bytes in: bs4 honours <meta charset> and falls back to sniffing.
            soup = BeautifulSoup(data, "html.parser")
    except Exception as e:  # html.parser is lenient; anything raised means truly broken input
        raise UnreadableFile(f"{path}: cannot parse HTML: {e}") from e
    metadata: dict = {}
    if soup.title is not None:
        title = _WS.sub(" ", soup.title.get_text()).strip()
        if title:
            metadata["title"] = title
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    text = _drop_navigation(_normalise_newlines(_html_to_text(soup))).strip("\n")
    return [Document(rel, text, metadata)] if text.strip() else []


# PDF ------------------------------------------------------------


def _read_pdf(path: Path, rel: str) -> list[Document]:
    import logging

    from pypdf import PasswordType, PdfReader

    # pypdf logs recoverable-structure warnings for many real PDFs; they are not the user's problem.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise UnreadableFile(f"{path}: encrypted PDF needs a password")
        page_texts = [_normalise_newlines(page.extract_text() or "") for page in reader.pages]
    except UnreadableFile:
        raise
    except Exception as e:  # pypdf raises a zoo of types on corrupt input
        raise UnreadableFile(f"{path}: cannot read PDF: {type(e).__name__}: {e}") from e
    if not page_texts:
        return []
    if not any(t.strip() for t in page_texts):
        raise UnreadableFile(f"{path}: PDF has no text layer (scanned? OCR it first)")
    pages, offset = [], 0
    for t in page_texts:
        pages.append(offset)
        offset += len(t) + 2  # the "\n\n" joiner
    return [Document(rel, "\n\n".join(page_texts), {}, pages=pages)]


# JSONL ----------------------------------------------------------


def _read_jsonl(path: Path, rel: str, problems: list[dict] | None = None) -> list[Document]:
    """Records as Documents. With `problems`, a bad line is appended there ({"path", "line", "error"}) and
    skipped, and the file fails only when no line is good; without it the first bad line fails the file."""
    text = _normalise_newlines(_decode(_read_bytes(path), path))
    docs: list[Document] = []
    bad: list[dict] = []
    record = 0
    # split("\n"), not splitlines(): JSON may hold U+2028 etc., which editors don't count as lines.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            error = None if isinstance(obj, dict) and isinstance(obj.get("text"), str) \
                else 'expected an object with a string "text"'
        except json.JSONDecodeError as e:
            error = f"invalid JSON: {e.msg}"
        if error:
            if problems is None:
                raise UnreadableFile(f"{path}: line {lineno}: {error}")
            bad.append({"path": rel, "line": lineno, "error": error})
            record += 1
            continue
        body = obj.pop("text")
        if body.strip():
            docs.append(Document(rel, body, obj, first_line=lineno, record=record))
        record += 1
    if bad and not docs:
        raise UnreadableFile(f"{path}: line {bad[0]['line']}: {bad[0]['error']} (and no good record)")
    if bad:
        problems.extend(bad)
    return docs


_READERS = {
    ".txt": _read_text, ".md": _read_text, ".rst": _read_text,
    ".html": _read_html, ".htm": _read_html,
    ".pdf": _read_pdf,
    ".jsonl": _read_jsonl,
}


def read_file(path: Path, root: Path, problems: list[dict] | None = None) -> list[Document]:
    """Documents from one supported file ([] for an empty file).

    Raises UnreadableFile for corrupt/unreadable input and ValueError for an unsupported
    suffix (callers check is_supported first). `problems` collects a JSONL file's bad lines.
    """
    path, root = Path(path), Path(root)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(f"unsupported file type: {path}")
    try:
        if path.stat().st_size == 0:
            return []  # an empty PDF would otherwise read as corrupt
    except OSError as e:
        raise UnreadableFile(f"{path}: {e.strerror or e}") from e
    if reader is _read_jsonl:
        return reader(path, _rel_path(path, root), problems)
    return reader(path, _rel_path(path, root))
