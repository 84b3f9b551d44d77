"""One gradient-training trial from the closed-form start, with dev-set nDCG@10 along the way.

What `genretrieve train --fit closed-form+gradient` does (same functions), plus the packaged dev
set's gen nDCG@10 (teacher documents) after the closed form and at every evaluation, so learning
rates and losses can be compared. Answers come from the response cache / shipped answers.
    python tools/gradient_trial.py --queries 1500 --steps 100 --lr 1e-5 --tokens-lr 3e-4 --recon-weight 0
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from genretrieve.bench.beir import doc_text, load_beir
from genretrieve.bench.metrics import ndcg_at_k
from genretrieve.bench.retrieval import DEVSET
from genretrieve.config import load_config
from genretrieve.models.load import load_encoder
from genretrieve.train.fit import fit_closed_form, mean_states
from genretrieve.train.run import choose_queries, split_heldout, training_responses
from genretrieve.train.trainer import Trainer, TrainData


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1500)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--tokens-lr", type=float, default=3e-4)
    parser.add_argument("--recon-weight", type=float, default=0.0)
    parser.add_argument("--config", default=None)
    args = parser.parse_args()
    config = load_config(args.config, model__adapter="fresh", train__max_queries=args.queries, train__steps=args.steps,
                         train__lr=args.lr, train__tokens_lr=args.tokens_lr, train__recon_weight=args.recon_weight,
                         train__warmup=min(50, args.steps // 5), train__eval_every=max(1, args.steps // 4))
    encoder = load_encoder(config)
    queries, _ = choose_queries(config, None)
    responses, _ = training_responses(encoder, queries, config)
    targets = encoder.teacher.encode(responses)
    train_idx, held_idx = split_heldout(len(queries), config.train.heldout, config.train.seed)
    texts = [q["text"] for q in queries]
    train_q, held_q = [texts[i] for i in train_idx], [texts[i] for i in held_idx]
    data = load_beir(DEVSET)
    doc_ids, qids = list(data.corpus), list(data.queries)
    dev_texts = [data.queries[q] for q in qids]
    docs = encoder.teacher.encode([doc_text(data.corpus[d]) for d in doc_ids])

    def dev_ndcg() -> float:
        top = np.argsort(-(encoder.encode_queries(dev_texts) @ docs.T), axis=1)[:, :10]
        return round(float(np.mean([ndcg_at_k([doc_ids[i] for i in row], data.qrels[q], 10)
                                    for q, row in zip(qids, top)])), 4)

    features = mean_states(encoder, train_q + held_q)
    closed = fit_closed_form(encoder.adapter, features[:len(train_q)], targets[train_idx], features[len(train_q):],
                             targets[held_idx], config.train.ridge_lambdas)
    print(json.dumps({"step": 0, "heldout": closed["heldout"], "lambda": closed["lambda"], "dev_ndcg@10": dev_ndcg()}), flush=True)
    trainer = Trainer(encoder, TrainData(train_q, [responses[i] for i in train_idx], targets[train_idx], held_q,
                                         targets[held_idx]), config.train)
    print(json.dumps({"steps_per_s": trainer.step_rate()}), flush=True)
    start = time.perf_counter()

    def report(entry: dict) -> None:
        if "heldout" in entry:
            print(json.dumps({**entry, "dev_ndcg@10": dev_ndcg(), "seconds": round(time.perf_counter() - start)}), flush=True)

    trainer.run(None, report)


if __name__ == "__main__":
    main()
