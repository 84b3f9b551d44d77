"""Token-aware chunking of Documents into overlapping windows that keep their provenance.

Documents are tokenized in one call per batch (a JSONL file's records, a file's pages: the fast
tokenizer splits a batch over the cores) with the offset mapping; windows of at most
`max_tokens` tokens slide with a fixed overlap, and a window is pulled back to a sentence or
line end when one lies in its last quarter (else to a word end). A window never starts inside
a word: with subword tokenizers the overlap would otherwise begin mid-word ("elists.org"), so the
start moves back to the word's first token. Line numbers, PDF pages and the nearest heading are
looked up by bisect over positions computed once per document. A heading is a markdown ATX line
outside code fences, or an rst/setext title: a line with a letter or digit, after a blank line
(or an overline), whose underline is not much longer than it (a longer one is a ruler).
Concessions: headings are recognised by line syntax only (so '# ' lines in a .txt count), and a
JSONL record's chunks all point at the record's line rather than at lines inside its text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from .readers import Document

_ATX = re.compile(r"#{1,6}[ \t]+(\S.*?)[ \t]*#*[ \t]*$")  # '## Title ##' -> 'Title'
_FENCE = re.compile(r"(```|~~~)")
_RST_ADORNMENT = set("=-~^")
_SENTENCE_END = set(".!?")


@dataclass
class Chunk:
    text: str
    start_char: int  # offsets into Document.text
    end_char: int
    start_line: int  # 1-based line numbers in the source file
    end_line: int
    page: int | None  # pdf: 1-based page of start_char
    heading: str | None  # nearest markdown/rst heading at or before start_char


def _underline(line: str, title: str, overlined: bool) -> bool:
    u = line.rstrip()
    # >= 3 chars keeps markdown list bullets ('-') from turning the previous line into a heading;
    # an underline far longer than its title is a ruler under a paragraph's last line.
    longest = len(u) if overlined else len(title) + max(4, len(title) // 2)
    return max(3, len(title)) <= len(u) <= longest and len(set(u)) == 1 and u[0] in _RST_ADORNMENT


def _is_ruler(line: str) -> bool:
    s = line.strip()
    return len(s) >= 3 and len(set(s)) == 1 and not s[0].isalnum()


class _Locator:
    """Per-document position tables: line starts, heading starts/titles, page starts."""

    def __init__(self, doc: Document):
        self.doc = doc
        text = doc.text
        lines = text.split("\n")
        self.line_starts: list[int] = []
        self.heading_pos: list[int] = []
        self.heading_text: list[str] = []
        pos, in_fence = 0, False
        for i, line in enumerate(lines):
            self.line_starts.append(pos)
            stripped = line.strip()
            if _FENCE.match(stripped):
                in_fence = not in_fence  # '# comment' inside a code block is not a heading
            elif not in_fence and stripped:
                m = _ATX.match(line)
                if m:
                    self._add_heading(pos, m.group(1))
                elif (
                    i + 1 < len(lines)
                    and re.search(r"[^\W_]", stripped)
                    and (i == 0 or not lines[i - 1].strip() or _is_ruler(lines[i - 1]))
                    and _underline(lines[i + 1], stripped, i > 0 and _is_ruler(lines[i - 1]))
                ):
                    self._add_heading(pos, stripped)
            pos += len(line) + 1

    def _add_heading(self, pos: int, title: str) -> None:
        self.heading_pos.append(pos)
        self.heading_text.append(title)

    def line(self, char: int) -> int:
        if self.doc.record is not None:
            return self.doc.first_line  # a JSONL record is one physical line in its file
        return self.doc.first_line + bisect_right(self.line_starts, char) - 1

    def chunk(self, start: int, end: int) -> Chunk | None:
        """Chunk for doc.text[start:end] with surrounding whitespace trimmed; None if blank."""
        raw = self.doc.text[start:end]
        body = raw.strip()
        if not body:
            return None
        start += len(raw) - len(raw.lstrip())
        end = start + len(body)
        page = bisect_right(self.doc.pages, start) if self.doc.pages else None
        h = bisect_right(self.heading_pos, start) - 1
        return Chunk(
            text=body,
            start_char=start,
            end_char=end,
            start_line=self.line(start),
            end_line=self.line(end - 1),
            page=page,
            heading=self.heading_text[h] if h >= 0 else None,
        )


def whole_document(doc: Document) -> list[Chunk]:
    """One chunk per Document (--no-chunk), with the same provenance fields."""
    chunk = _Locator(doc).chunk(0, len(doc.text))
    return [chunk] if chunk else []


def _ends_sentence(text: str, end: int) -> bool:
    """True if a token ending at `end` closes a line or a sentence ('. ' and friends)."""
    if end >= len(text):
        return True
    if text[end] == "\n" or text[end - 1] == "\n":
        return True
    return text[end - 1] in _SENTENCE_END and text[end].isspace()


def _mid_word(text: str, char: int) -> bool:
    return 0 < char < len(text) and text[char - 1].isalnum() and text[char].isalnum()


def chunk_document(
    doc: Document, tokenizer, max_tokens: int = 200, overlap: float = 0.15
) -> list[Chunk]:
    """Overlapping windows of <= max_tokens tokens, preferring to end at sentence/line ends."""
    return chunk_documents([doc], tokenizer, max_tokens, overlap)[0]


def chunk_documents(
    docs: list[Document], tokenizer, max_tokens: int = 200, overlap: float = 0.15
) -> list[list[Chunk]]:
    """chunk_document for each of `docs`, with one tokenizer call for all of them."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be >= 1")
    if not 0 <= overlap < 1:
        raise ValueError("overlap must be in [0, 1)")
    texts = [doc.text for doc in docs if doc.text.strip()]
    # verbose=False: long documents exceed model_max_length by design; we window them ourselves.
    offsets = iter(tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True,
                             verbose=False)["offset_mapping"] if texts else [])
    return [_windows(doc, next(offsets), max_tokens, overlap) if doc.text.strip() else [] for doc in docs]


def _windows(doc: Document, offsets: list[tuple[int, int]], max_tokens: int, overlap: float) -> list[Chunk]:
    text = doc.text
    n = len(offsets)
    if n <= max_tokens:
        return whole_document(doc)

    locator = _Locator(doc)
    overlap_tokens = min(round(overlap * max_tokens), max_tokens - 1)
    slack = max_tokens // 4  # how far back a window may retreat to reach a sentence end
    chunks: list[Chunk] = []
    start, prev_end = 0, 0
    while True:
        end = min(start + max_tokens, n)
        if end < n:
            # Never retreat so far that the window stops advancing past the previous one.
            floor = max(end - slack, start + 1, prev_end + 1)
            for j in range(end - 1, floor - 2, -1):
                if _ends_sentence(text, offsets[j][1]):
                    end = j + 1
                    break
            else:  # no sentence end in reach: at least end between words
                for j in range(end - 1, floor - 2, -1):
                    if not _mid_word(text, offsets[j][1]):
                        end = j + 1
                        break
        chunk = locator.chunk(offsets[start][0], offsets[end - 1][1])
        if chunk:
            chunks.append(chunk)
        if end >= n:
            return chunks
        prev_end, prev_start = end, start
        start = max(end - overlap_tokens, start + 1)
        while start > prev_start + 1 and _mid_word(text, offsets[start][0]):
            start -= 1  # back to the word's first token: more overlap, never a lost or cut word
