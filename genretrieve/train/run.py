"""One training run, start to end: queries -> cached responses -> teacher targets -> fit -> adapter.

The fitting is chosen by the config: the closed-form ridge readout (forward passes only), the
gradient trainer, or the first followed by the second. Safety-slice queries are answered by a
refusal: the backbone's own when it refuses, otherwise the refusal the pool assigns. The adapter
folder gets `training.json` (config, data provenance and hashes, metrics, wall time, device) and
a loss curve when gradients were used.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import re
import time
from pathlib import Path

import numpy as np

from ..config import Config
from ..errors import UsageError
from ..models.adapter import make_card, save_adapter
from ..models.assets import home
from ..safety import SafetyProbe
from .evaluate import heldout_metrics
from .fit import fit_closed_form, mean_states
from .pool import POOL, load_pool
from .responses import ResponseCache, ensure_responses
from .trainer import Trainer, TrainData

REFUSAL = re.compile(r"\b(I can(no|')t|I am not able|I'm not able|I won't|I will not|I'm sorry|I am sorry|"
                     r"as an AI|not appropriate|cannot (help|assist|provide))", re.IGNORECASE)


def choose_queries(config: Config, queries: list[dict] | None) -> tuple[list[dict], dict]:
    """The training queries: a hash-ordered sample of the packaged pool (`train.max_queries`) plus, with
    `train.natural_questions`, a sample of the natural questions' fit part alike (`train.max_natural_questions`);
    or the user's own queries, sampled alike."""
    packaged = queries is None
    if packaged:
        queries, source = load_pool(POOL), {"pool": str(POOL.name), "sha256": hashlib.sha256(POOL.read_bytes()).hexdigest()}
    else:
        source = {"file": "user queries", "sha256": hashlib.sha256("\n".join(q["text"] for q in queries).encode()).hexdigest()}
    queries = first_in_hash_order(queries, config.train.max_queries, config.train.seed)
    if packaged and config.train.natural_questions:
        # the calibrate and test parts stay out: they measure the safety filter on questions it never saw
        from ..safety.data import natural

        taken = {q["text"] for q in queries}
        extra = [{"id": f"natural-{i}", "text": t, "source": "natural"} for i, t in enumerate(natural("fit")) if t not in taken]
        extra = first_in_hash_order(extra, config.train.max_natural_questions, config.train.seed)
        queries, source = queries + extra, {**source, "natural_questions": len(extra)}
    return queries, {**source, "n": len(queries)}


def first_in_hash_order(queries: list[dict], most: int, seed: int) -> list[dict]:
    """The `most` queries first in hash order, kept in their given order."""
    return [queries[i] for i in sorted(hash_order(queries, seed)[:most])]


def hash_order(queries: list[dict], seed: int) -> list[int]:
    """Query indices ranked by a hash of (seed, text), not by position: editing the pool keeps the
    other picks (so their cached answers stay valid), and the first N are the N that train picks."""
    return sorted(range(len(queries)), key=lambda i: hashlib.sha256(f"{seed}:{queries[i]['text']}".encode()).digest())


def split_heldout(n: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n_held = min(max(50, int(round(n * share))), n // 2)
    order = np.random.default_rng([seed, 1]).permutation(n)
    return np.sort(order[n_held:]), np.sort(order[:n_held])


def training_responses(encoder, queries: list[dict], config: Config, report=None) -> tuple[list[str], dict]:
    t = config.train
    cache = ResponseCache(home() / "responses.sqlite")
    responses, stats = ensure_responses(encoder, [q["text"] for q in queries], cache, t.max_new_tokens,
                                        t.gen_batch_size, report)
    responses, replaced = with_refusals(queries, responses)
    return responses, {**stats, "safety_refusals_substituted": replaced}


def with_refusals(queries: list[dict], responses: list[str]) -> tuple[list[str], int]:
    """Safety-slice queries keep the backbone's own refusal, else get the pool's refusal."""
    out = list(responses)
    replaced = 0
    for i, query in enumerate(queries):
        if query.get("safety") and not REFUSAL.search(out[i][:200]):
            out[i] = query["refusal"]
            replaced += 1
    return out, replaced


def train_adapter(encoder, config: Config, out_dir: Path, queries: list[dict] | None = None,
                  resume: bool = False, max_steps: int | None = None, time_budget_min: float | None = None,
                  report=None) -> dict:
    t = config.train
    if t.fit not in ("closed-form", "gradient", "closed-form+gradient"):
        raise UsageError(f"train.fit must be closed-form, gradient or closed-form+gradient, not {t.fit!r}")
    start = time.perf_counter()
    report = report or (lambda stage, done, total, note="": None)
    queries, data_source = choose_queries(config, queries)
    responses, generation = training_responses(
        encoder, queries, config, lambda done, total, tps: report("responses", done, total, f"{tps:.0f} tok/s"))
    targets = encoder.teacher.encode(responses)
    train_idx, held_idx = split_heldout(len(queries), t.heldout, t.seed)
    texts = [q["text"] for q in queries]
    train_q, held_q = [texts[i] for i in train_idx], [texts[i] for i in held_idx]
    untrained = heldout_metrics(encoder.encode_queries(held_q), targets[held_idx], targets[train_idx].mean(0))
    # a reference point, not a student: how close the teacher's embedding of the query itself comes
    teacher_query = heldout_metrics(encoder.teacher.encode(held_q), targets[held_idx], targets[train_idx].mean(0))
    record: dict = {"data": data_source, "generation": generation, "heldout_untrained": untrained,
                    "heldout_teacher_query": teacher_query,
                    "n_train": len(train_idx), "n_heldout": len(held_idx)}

    if "closed-form" in t.fit:
        features = mean_states(encoder, train_q + held_q, report=lambda d, n: report("forward pass", d, n))
        record["closed_form"] = fit_closed_form(encoder.adapter, features[:len(train_q)], targets[train_idx],
                                                features[len(train_q):], targets[held_idx], t.ridge_lambdas)
    if "gradient" in t.fit:
        settings = t if max_steps is None else dataclasses.replace(t, steps=max_steps)
        data = TrainData(train_q, [responses[i] for i in train_idx], targets[train_idx], held_q, targets[held_idx])
        trainer = Trainer(encoder, data, settings, Path(out_dir).with_name(Path(out_dir).name + ".checkpoint"))
        if resume and not trainer.load_checkpoint():
            raise UsageError("--resume: no checkpoint to resume from")
        step_rate = trainer.step_rate()
        stopped = trainer.run(None if time_budget_min is None else time_budget_min * 60,
                              lambda entry: report("training", entry["step"], settings.steps,
                                                   f"align {entry['align']:.3f} recon {entry['recon']:.3f}"))
        record["gradient"] = {"steps": trainer.step, "stopped": stopped, "steps_per_s": step_rate, "log": trainer.log}

    record["heldout"] = heldout_metrics(encoder.encode_queries(held_q), targets[held_idx], targets[train_idx].mean(0))
    report("safety probe", 0, 1)
    probe = fit_safety_probe(encoder, [q["text"] for q in queries if not q.get("safety")], t.seed,
                             report=lambda d, n: report("safety features", d, n))
    record["safety_probe"] = {"features": probe.features, "calibration": probe.calibration,
                              "validation": probe.fit.get("validation")}
    record.update(config=config.to_dict(), seconds=round(time.perf_counter() - start, 1),
                  device=machine(encoder))
    card = make_card(encoder.adapter, encoder.backbone.model_id, encoder.backbone.fingerprint, encoder.teacher.model_id,
                     encoder.teacher.fingerprint, {"query": encoder.query_instruction, "document": encoder.document_instruction},
                     training={k: record[k] for k in ("data", "heldout", "heldout_untrained", "seconds", "device")}
                     | {"fit": t.fit}, framing=encoder.framing.to_card())
    # only the reconstruction loss makes the soft prompts decodable into text (`explain`)
    card["decodable"] = "gradient" in t.fit and t.recon_weight > 0 and record["gradient"]["steps"] > 0
    save_adapter(encoder.adapter, card, out_dir)
    probe.save(out_dir)
    (Path(out_dir) / "training.json").write_text(json.dumps(record, indent=2, default=float))
    if "gradient" in record:
        plot_losses(record["gradient"]["log"], Path(out_dir) / "loss.png")
    return record


def machine(encoder) -> str:
    """Where a figure was made: device, CPU model and its speed flags, dtype."""
    from ..models.device import cpu_info

    cpu = cpu_info()
    name = cpu["model"] or platform.machine()
    return (f"{encoder.backbone.device} ({name}; {' '.join(cpu['flags']) or 'no flags read'}), "
            f"{str(encoder.backbone.dtype).removeprefix('torch.')}")


def fit_safety_probe(encoder, domain_benign: list[str], seed: int, rate: float = 0.01, report=None) -> SafetyProbe:
    """The filter for this adapter (genretrieve.safety.fit): Do-Not-Answer and written harmful prompts against
    the pool's and the training run's benign queries and the fitting parts of the natural, everyday and
    borderline sets; threshold for `rate` false flags on the natural and everyday questions' calibration parts."""
    from ..safety.fit import fit_safety

    return fit_safety(encoder, domain_benign, seed, rate, report=report)


def refit_safety_probe(encoder, config: Config, adapter_dir: Path, queries: list[dict] | None = None,
                       rate: float = 0.01, report=None) -> SafetyProbe:
    """`genretrieve fit-safety`: refit only the probe of an existing adapter, beside it; no answers generated.

    The benign training queries are chosen as `train` chose them (same pool sample, or your file)."""
    chosen, _ = choose_queries(config, queries)
    probe = fit_safety_probe(encoder, [q["text"] for q in chosen if not q.get("safety")], config.train.seed, rate, report)
    probe.save(adapter_dir)
    return probe


def plot_losses(log: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [e["step"] for e in log]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, [e["align"] for e in log], label="L_align")
    ax.plot(steps, [e["recon"] for e in log], label="L_recon")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
