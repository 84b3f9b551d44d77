"""Read an embedding back as text: greedy decoding of the soft prompts, and the logit lens.

Decoding feeds P (10 x d) to the frozen causal LM as `inputs_embeds`, with nothing else in the
context, exactly as the reconstruction loss trains it; the logit lens applies the LM head to the
hidden states H at the 10 positions. Both are for inspection, never on the search path.
Only an adapter trained with the reconstruction loss has a P the LM can read: for any other
(the closed-form readout leaves P = H) decoding yields fluent-looking noise, so it is not run
and the explanation says so instead. The card field `decodable` records it; the trainer writes
it, the paper's imported adapters are decodable (trained with L_recon), old cards are not.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

NOT_DECODABLE = ("this adapter cannot be decoded into text; it was not trained with the reconstruction loss, so its "
                 "soft prompts do not stand for readable text (train one with --fit gradient and train.recon_weight > 0)")


def decodable(card: dict) -> bool:
    """Whether the adapter's soft prompts were trained to decode into the response (card["decodable"])."""
    return bool(card.get("decodable", card.get("teacher_space") == "reference"))


@dataclass
class Explanation:
    query: str
    decodable: bool
    decoded: str | None  # None when the adapter cannot be decoded
    lens: list[list[str]] = field(default_factory=list)  # top tokens per adapter position

    @property
    def text(self) -> str:
        """What to show a user: the decoded response, or why there is none."""
        return self.decoded if self.decodable else NOT_DECODABLE

    def to_dict(self) -> dict:
        return {"query": self.query, "decodable": self.decodable, "decoded": self.decoded, "logit_lens": self.lens,
                **({} if self.decodable else {"message": NOT_DECODABLE})}


@torch.inference_mode()
def explain(encoder, queries: list[str], max_new_tokens: int = 64, top: int = 5,
            instruction: str | None = None) -> list[Explanation]:
    if not decodable(encoder.card):
        # nothing is run: neither the decoding nor the lens of an undecodable P would mean anything
        return [Explanation(query, False, None) for query in queries]
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
        results.append(Explanation(query, True, tokenizer.decode(generated[0], skip_special_tokens=True).strip(), lens))
    return results
