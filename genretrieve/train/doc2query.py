"""Domain adaptation: the backbone writes a question for sampled chunks of the user's own index.

Those questions then train the adapter like any other unlabeled queries (doc2query). Chunks
are sampled deterministically; a generated line that is empty or not question-like is dropped.
"""
from __future__ import annotations

import numpy as np

from ..errors import UsageError
from ..index.folder import IndexFolder
from ..models.generate import generate_answers

PROMPT = "Write one short question that the following passage answers. Reply with the question only.\n\nPassage:\n{text}"


def queries_from_index(encoder, index_dir, n: int, seed: int = 0, max_chars: int = 1500) -> list[dict]:
    folder = IndexFolder(index_dir)
    ids = folder.store.all_chunk_ids()
    if not ids:
        raise UsageError(f"the index at {index_dir} has no chunks")
    picked = np.random.default_rng(seed).choice(ids, size=min(n, len(ids)), replace=False)
    chunks = folder.store.get_chunks([int(i) for i in picked])
    answers = generate_answers(encoder.backbone, [PROMPT.format(text=c["text"][:max_chars]) for c in chunks], max_new_tokens=48)
    queries = []
    for chunk, answer in zip(chunks, answers):
        line = answer.strip().splitlines()[0].strip() if answer.strip() else ""
        if len(line) > 8:
            queries.append({"text": line, "source": f"doc2query:{chunk['path']}"})
    folder.close()
    return queries
