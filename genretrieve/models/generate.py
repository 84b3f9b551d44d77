"""Batched greedy generation with the backbone's chat template: the LLM's own answers.

Used for training targets (the response each query would get), HyDE, and the safety corpus.
Prompts are sorted by length into left-padded batches, and the original order is restored.
"""
from __future__ import annotations

import torch

from .batching import length_sorted_batches


def chat_prompt(tokenizer, text: str, system: str | None = None) -> str:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    if tokenizer.chat_template is None:  # base models: the text itself is the prompt
        return text
    # enable_thinking=False: Qwen3 would otherwise answer with a <think> block; other templates ignore it
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, enable_thinking=False)


@torch.inference_mode()
def generate_answers(backbone, texts: list[str], max_new_tokens: int = 128, batch_size: int = 16,
                     system: str | None = None, chat: bool = True, on_batch=None,
                     repetition_penalty: float = 1.0) -> list[str]:
    """Greedy answers of the frozen backbone; `on_batch(n_texts, n_new_tokens)` reports progress."""
    model, tokenizer = backbone.model, backbone.tokenizer
    prompts = [chat_prompt(tokenizer, t, system) if chat else t for t in texts]
    answers = [""] * len(texts)
    for idx in length_sorted_batches([len(p) for p in prompts], batch_size):
        batch = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True,
                          add_special_tokens=False).to(model.device)
        output = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                repetition_penalty=repetition_penalty, pad_token_id=tokenizer.pad_token_id)
        new = output[:, batch["input_ids"].shape[1]:]
        for i, row in zip(idx, new):
            answers[i] = tokenizer.decode(row, skip_special_tokens=True).strip()
        if on_batch:
            on_batch(len(idx), int((new != tokenizer.pad_token_id).sum()))
    return answers
