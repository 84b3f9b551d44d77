"""Learning curve of the closed-form readout: training queries -> held-out top-1 and dev-set nDCG@10.

For each token init (prompt = chat framing, random = the old plain design) and each data size N,
fit the ridge readout on the first N answered pool queries (in the order `genretrieve train`
picks them; answers from the response cache, so run `genretrieve train` or ship answers first),
choose lambda on 150 held-out queries, and score gen (teacher-encoded documents) on the packaged
dev set beside the teacher and the oracle (teacher embedding of the backbone's own answer).
With --natural, each size is also fitted with the natural questions' fit part added (real
questions from packaged FAQs and help pages, genretrieve.safety.data; none from the dev set's
Debian FAQ), answered as training answers are (generated once into the response cache);
--natural-sizes N,M adds only N, M of them (a hash-ordered sample) as further points.
    python tools/learning_curve.py --sizes 250,500,1000,2000 --token-init prompt,random
    python tools/learning_curve.py --sizes 0,995,3946 --token-init prompt --natural --natural-sizes 500,995
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from genretrieve.bench.beir import doc_text, load_beir
from genretrieve.bench.metrics import ndcg_at_k
from genretrieve.bench.retrieval import DEVSET
from genretrieve.config import load_config
from genretrieve.models.assets import home
from genretrieve.models.load import load_encoder
from genretrieve.safety.data import natural
from genretrieve.train.evaluate import heldout_metrics, normalise
from genretrieve.train.fit import predict, ridge
from genretrieve.train.responses import ResponseCache, answer_settings, ensure_responses, response_key
from genretrieve.train.pool import POOL, load_pool
from genretrieve.train.run import hash_order, with_refusals

HELDOUT = 150


def answered(encoder, config, cache, most: int) -> list[tuple[str, str]]:
    """(query, answer) for the first `most` pool queries, in train's order, whose answer is cached;
    the safety slice gets its refusal, as in training."""
    pool = load_pool(POOL)
    queries = [pool[i] for i in hash_order(pool, config.train.seed)]
    settings = answer_settings(config.train.max_new_tokens)
    keys = [response_key(encoder.backbone.fingerprint, settings, q["text"]) for q in queries]
    found = cache.get_many(keys)
    kept = [(q, found[k]) for q, k in zip(queries, keys) if k in found][:most]
    answers, _ = with_refusals([q for q, _ in kept], [a for _, a in kept])
    return [(q["text"], a) for (q, _), a in zip(kept, answers)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250,500,1000,2000")
    parser.add_argument("--token-init", default="prompt,random")
    parser.add_argument("--config", default=None)
    parser.add_argument("--natural", action="store_true", help="also fit each size with the natural questions added")
    parser.add_argument("--natural-sizes", default="", help="with --natural: also add only the first N natural questions")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    data = load_beir(DEVSET)
    doc_ids, qids = list(data.corpus), list(data.queries)
    texts = [data.queries[q] for q in qids]
    cache = ResponseCache(home() / "responses.sqlite")
    reference = None
    for init in args.token_init.split(","):
        config = load_config(args.config, model__adapter="fresh", model__token_init=init)
        if init == "random":  # the old design's instruction
            config.model.query_instruction = "Generate a passage that best answers this question:"
        encoder = load_encoder(config)
        if reference is None:
            docs = encoder.teacher.encode([doc_text(data.corpus[d]) for d in doc_ids])

            def ndcg(vectors: np.ndarray) -> float:
                top = np.argsort(-(normalise(vectors) @ docs.T), axis=1)[:, :10]
                return float(np.mean([ndcg_at_k([doc_ids[i] for i in row], data.qrels[q], 10) for q, row in zip(qids, top)]))

            answers, _ = ensure_responses(encoder, texts, cache, config.train.max_new_tokens, config.train.gen_batch_size)
            reference = {"teacher": ndcg(encoder.teacher.encode(texts)), "oracle": ndcg(encoder.teacher.encode(answers))}
            print(json.dumps(reference), flush=True)
        pairs = answered(encoder, config, cache, max(sizes) + HELDOUT)
        held, train = pairs[:HELDOUT], pairs[HELDOUT:]
        sizes_here = [n for n in sizes if n <= len(train)]
        n_max = max(sizes_here)
        # hash order, so the first N natural questions mix every source rather than the file's first FAQs
        fit_part = natural("fit") if args.natural else []
        extra = [fit_part[i] for i in hash_order([{"text": t} for t in fit_part], config.train.seed)]
        extra = extra[:config.train.max_natural_questions]  # those train would add: their answers may be all there is
        extra_answers = ensure_responses(encoder, extra, cache, config.train.max_new_tokens,
                                         config.train.gen_batch_size)[0] if extra else []
        features = encoder.mean_states([q for q, _ in train[:n_max]] + [q for q, _ in held] + extra)
        targets = encoder.teacher.encode([a for _, a in train[:n_max]] + [a for _, a in held] + extra_answers)
        n_held = n_max + HELDOUT
        held_x, held_y, extra_x, extra_y = features[n_max:n_held], targets[n_max:n_held], features[n_held:], targets[n_held:]
        dev_features = encoder.mean_states(texts)
        for n in sizes_here:
            partial = [int(a) for a in args.natural_sizes.split(",") if a and int(a) < len(extra)]
            for added in [a for a in ([0, *partial, len(extra)] if extra else [0]) if n + a]:  # size 0: natural alone
                x, y = np.concatenate([features[:n], extra_x[:added]]), np.concatenate([targets[:n], extra_y[:added]])
                trials = []
                for lam in config.train.ridge_lambdas:
                    fit = ridge(x, y, lam)
                    trials.append((heldout_metrics(predict(held_x, fit), held_y, y.mean(0)), lam, fit))
                metrics, lam, fit = max(trials, key=lambda t: (t[0]["top1"], t[0]["cosine"]))
                gen = ndcg(predict(dev_features, fit))
                print(json.dumps({"token_init": init, "queries": n, "natural_added": added, "lambda": lam,
                                  "heldout_top1": round(metrics["top1"], 3), "gen_ndcg@10": round(gen, 4),
                                  "gen/oracle": round(gen / reference["oracle"], 3)}), flush=True)


if __name__ == "__main__":
    main()
