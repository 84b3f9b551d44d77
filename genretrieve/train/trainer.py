"""Gradient training of the adapter: L_align + L_recon through the frozen backbone (method.md).

L_align is the squared distance between the normalised student embedding and the teacher's
embedding of the response (normalising first stops the loss fighting the output norm; the sum
over dimensions keeps it on the scale of L_recon). L_recon is next-token cross-entropy on the
response given only the 10 soft prompts. The batch order is a function of (seed, step), and
checkpoints hold the adapter, optimiser and scheduler, so a resumed run equals an uninterrupted one.
"""
from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..atomic import replace_folder
from ..config import TrainConfig
from .evaluate import heldout_metrics


@dataclass
class TrainData:
    queries: list[str]
    responses: list[str]
    targets: np.ndarray  # teacher embeddings of the responses
    heldout_queries: list[str] = field(default_factory=list)
    heldout_targets: np.ndarray | None = None


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """The examples of a given step: a fresh permutation per epoch, fixed by (seed, epoch)."""
    per_epoch = max(1, n // batch_size)
    epoch, offset = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return order[offset * batch_size:(offset + 1) * batch_size]


def recon_loss(encoder, prompts: torch.Tensor, responses: list[str], max_tokens: int) -> torch.Tensor:
    """Cross-entropy of each response (+ EOS) given only its soft prompts P."""
    model, tokenizer = encoder.backbone.model, encoder.backbone.tokenizer
    ids = [row[:max_tokens] + [tokenizer.eos_token_id]
           for row in tokenizer(responses, add_special_tokens=False)["input_ids"]]
    width, n = max(len(r) for r in ids), prompts.shape[1]
    device = prompts.device
    input_ids = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long, device=device)
    mask = torch.zeros((len(ids), width), dtype=torch.long, device=device)
    for row, seq in enumerate(ids):
        input_ids[row, :len(seq)] = torch.tensor(seq, device=device)
        mask[row, :len(seq)] = 1
    embeds = torch.cat([prompts.to(model.dtype), model.get_input_embeddings()(input_ids)], dim=1)
    attention = torch.cat([torch.ones((len(ids), n), dtype=torch.long, device=device), mask], dim=1)
    labels = torch.cat([torch.full((len(ids), n), -100, device=device), input_ids.masked_fill(mask == 0, -100)], dim=1)
    return model(inputs_embeds=embeds, attention_mask=attention, labels=labels).loss.float()


def lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


class Trainer:
    def __init__(self, encoder, data: TrainData, settings: TrainConfig, checkpoint_dir: Path | None = None,
                 cached: bool = True):
        self.encoder, self.data, self.s = encoder, data, settings
        self.checkpoint_dir = checkpoint_dir
        self.cached = cached
        adapter = encoder.adapter
        self.optimizer = torch.optim.AdamW([
            {"params": [adapter.tokens], "lr": settings.tokens_lr, "weight_decay": 0.0},
            {"params": list(adapter.recon.parameters()) + list(adapter.align.parameters()), "lr": settings.lr},
        ])
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, settings.warmup, settings.steps))
        self.step = 0
        self.log: list[dict] = []
        if settings.gradient_checkpointing:
            encoder.backbone.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def states(self, queries: list[str]) -> torch.Tensor:
        """H with gradients into the token rows: through the 10 adapter positions alone when `cached`
        (the inputs' keys/values come from a no-grad pass), else through the whole sequence."""
        enc = self.encoder
        prefix, rows = enc.token_ids(queries, enc.query_instruction)
        if self.cached:
            return enc.token_states(enc.context(prefix, rows))
        return enc.full_states(prefix, rows)

    def losses(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        enc, s = self.encoder, self.s
        hidden = self.states([self.data.queries[i] for i in idx])
        prompts = enc.adapter.soft_prompts(hidden)
        student = F.normalize(enc.adapter.embed(prompts), dim=-1)
        target = torch.from_numpy(self.data.targets[idx]).to(student.device)
        align = ((student - target) ** 2).sum(-1).mean()
        recon = (recon_loss(enc, prompts, [self.data.responses[i] for i in idx], s.recon_max_tokens)
                 if s.recon_weight else torch.zeros((), device=student.device))
        return align, recon

    def backward(self, idx: np.ndarray) -> dict:
        """Losses of a batch, with their gradients accumulated on the adapter."""
        s = self.s
        totals = {"align": 0.0, "recon": 0.0}
        micro = max(1, s.batch_size // s.grad_accum)
        for part in np.array_split(idx, math.ceil(len(idx) / micro)):
            align, recon = self.losses(part)
            ((s.align_weight * align + s.recon_weight * recon) * len(part) / len(idx)).backward()
            totals["align"] += align.item() * len(part) / len(idx)
            totals["recon"] += recon.item() * len(part) / len(idx)
        return totals

    def step_rate(self, repeats: int = 3) -> dict:
        """Steps/s of forward + backward with the cached context and without, on the same batches
        (no update is made): what caching the inputs' keys and values buys."""
        rates = {}
        for cached in (True, False):
            self.cached, seconds = cached, []
            for r in range(repeats):
                start = time.perf_counter()
                self.backward(batch_indices(len(self.data.queries), self.s.batch_size, self.s.seed, r))
                seconds.append(time.perf_counter() - start)
                self.optimizer.zero_grad(set_to_none=True)
            rates["cached" if cached else "uncached"] = round(1 / float(np.median(seconds)), 3)
        self.cached = True
        return rates

    def train_step(self) -> dict:
        s = self.s
        self.encoder.adapter.train()
        idx = batch_indices(len(self.data.queries), s.batch_size, s.seed, self.step)
        totals = self.backward(idx)
        torch.nn.utils.clip_grad_norm_(self.encoder.adapter.parameters(), 1.0)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return {"step": self.step, **totals}

    def evaluate(self) -> dict:
        if not self.data.heldout_queries:
            return {}
        student = self.encoder.encode_queries(self.data.heldout_queries)
        return heldout_metrics(student, self.data.heldout_targets, self.data.targets.mean(0))

    def run(self, time_budget_s: float | None = None, report=None) -> str:
        """Train to `steps`, or until the time budget runs out; returns why it stopped."""
        start = time.perf_counter()
        reason = "done"
        while self.step < self.s.steps:
            entry = self.train_step()
            if self.step % self.s.eval_every == 0 or self.step == self.s.steps:
                entry["heldout"] = self.evaluate()
            self.log.append(entry)
            if report:
                report(entry)
            if self.checkpoint_dir and self.step % self.s.checkpoint_every == 0:
                self.save_checkpoint()
            if time_budget_s is not None and time.perf_counter() - start > time_budget_s:
                reason = "time budget"
                break
        if self.checkpoint_dir:
            self.save_checkpoint()
        return reason

    # --- checkpoints: written to a temp folder, then renamed over the previous one ---------------
    def save_checkpoint(self) -> None:
        folder = Path(self.checkpoint_dir)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".checkpoint-"))
        save_file({k: v.detach().cpu().contiguous() for k, v in self.encoder.adapter.state_dict().items()},
                  staging / "adapter.safetensors")
        torch.save({"step": self.step, "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(), "log": self.log}, staging / "state.pt")
        replace_folder(staging, folder)

    def load_checkpoint(self) -> bool:
        folder = Path(self.checkpoint_dir) if self.checkpoint_dir else None
        if folder is None or not (folder / "state.pt").exists():
            return False
        self.encoder.adapter.load_state_dict(load_file(folder / "adapter.safetensors"))
        state = torch.load(folder / "state.pt", weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.log = state["step"], state["log"]
        return True
