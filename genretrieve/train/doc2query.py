"""Domain adaptation: the backbone writes a question for sampled chunks of the user's own index.

Those questions then train the adapter like any other unlabeled queries (doc2query). Chunks
are sampled deterministically. Only a first line that reads as a question (ends with "?") is kept:
a small backbone often answers the prompt instead ("What a fascinating topic! ..."), and such a
line would train the adapter on chatter. How many chunks gave a question is returned with them.
"""
from __future__ import annotations

import re

import numpy as np

from ..errors import UsageError
from ..index.folder import IndexFolder
from ..models.generate import generate_answers

PROMPT = "Write one short question that the following passage answers. Reply with the question only.\n\nPassage:\n{text}"
LABEL = re.compile(r"^(question|q)\s*[:.]\s*", re.I)  # "Question: How ...?" -> "How ...?"


def question_line(answer: str) -> str | None:
    """The question in a generated reply, or None when its first line is not one."""
    lines = answer.strip().splitlines()
    line = LABEL.sub("", lines[0].strip()) if lines else ""
    return line if line.endswith("?") and len(line.split()) >= 3 else None


def queries_from_index(encoder, index_dir, n: int, seed: int = 0, max_chars: int = 1500) -> tuple[list[dict], dict]:
    """(queries, {"chunks": asked, "questions": kept}) for up to n sampled chunks of the index."""
    folder = IndexFolder(index_dir)
    try:
        ids = folder.store.all_chunk_ids()
        if not ids:
            raise UsageError(f"the index at {index_dir} has no chunks")
        picked = np.random.default_rng(seed).choice(ids, size=min(n, len(ids)), replace=False)
        chunks = folder.store.get_chunks([int(i) for i in picked])
    finally:
        folder.close()
    answers = generate_answers(encoder.backbone, [PROMPT.format(text=c["text"][:max_chars]) for c in chunks], max_new_tokens=48)
    queries = [{"text": q, "source": f"doc2query:{c['path']}"} for c, a in zip(chunks, answers)
               if (q := question_line(a))]
    return queries, {"chunks": len(chunks), "questions": len(queries)}
