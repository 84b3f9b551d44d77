"""Read an embedding back as text: greedy decoding of the soft prompts, and the logit lens.

Decoding feeds P (10 x d) to the frozen causal LM as `inputs_embeds`, with nothing else in the
context, exactly as the reconstruction loss trains it; the logit lens applies the LM head to the
hidden states H at the 10 positions. Both are for inspection, never on the search path.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .encoder import GenEncoder


@dataclass
class Explanation:
    query: str
    decoded: str
    lens: list[list[str]]  # top tokens per adapter position


@torch.inference_mode()
def explain(encoder: GenEncoder, queries: list[str], max_new_tokens: int = 64, top: int = 5,
            instruction: str | None = None) -> list[Explanation]:
    model = encoder.backbone.model
    tokenizer = encoder.backbone.tokenizer
    instruction = encoder.query_instruction if instruction is None else instruction
    results = []
    for query in queries:
        hidden = encoder.hidden_states(*encoder.token_ids([query], instruction))
        prompts = encoder.adapter.soft_prompts(hidden).to(model.dtype)
        mask = torch.ones(prompts.shape[:2], dtype=torch.long, device=prompts.device)
        generated = model.generate(inputs_embeds=prompts, attention_mask=mask, max_new_tokens=max_new_tokens,
                                   do_sample=False, pad_token_id=tokenizer.pad_token_id)
        logits = model.get_output_embeddings()(hidden.to(model.dtype))[0]
        lens = [[tokenizer.decode([i]) for i in row] for row in logits.topk(top, dim=-1).indices.tolist()]
        results.append(Explanation(query, tokenizer.decode(generated[0], skip_special_tokens=True).strip(), lens))
    return results
