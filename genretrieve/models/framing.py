"""How a text is framed before the 10 adapter tokens, and what those tokens start as.

- chat: the text is the user turn of the backbone's chat template; the template's closing part
  (end of turn + assistant header) is what the LLM reads just before it answers, so the 10 tokens
  are initialised from the embeddings of that closing part, padded on the left with a short
  instruction (`CHAT_LEADS`, the first that reaches 10 tokens); what of the instruction is left
  over stays in the input as ordinary tokens after the text. Their states then carry the answer the LLM is about to give.
- plain: `instruction + " " + text`, the paper's format, tokenised as one string; the tokens start
  as the embeddings of `PLAIN_LEAD`'s last 10 tokens (prompt) or random rows (the old design).
The framing (with the exact prefix text) goes in the adapter card, so an adapter encodes as it
was trained even if a tokenizer's template changes later.
"""
from __future__ import annotations

from dataclasses import dataclass

CHAT_LEADS = (" Answer in a few sentences.", " Read the question above and answer it in a few sentences.")
PLAIN_LEAD = " Read the question above. The answer to this question is:"
_SLOT = "\ue000"  # a private-use character marks where the text goes in the template


def chat_parts(tokenizer, instruction: str) -> tuple[str, str]:
    """The template's text before and after the user's content (`instruction` + the text)."""
    content = f"{instruction}\n\n{_SLOT}" if instruction else _SLOT
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                             tokenize=False, enable_thinking=False)
    before, after = rendered.split(_SLOT)
    return before, after


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@dataclass(frozen=True)
class Framing:
    kind: str  # chat | plain
    token_text: str = ""  # the text whose last n tokens initialised the adapter rows ("" = random rows)

    @classmethod
    def from_card(cls, card: dict) -> "Framing":
        framing = card.get("framing") or {"kind": "plain"}  # cards before framing existed were plain
        return cls(framing["kind"], framing.get("token_text", ""))

    @classmethod
    def choose(cls, tokenizer, token_init: str, n: int) -> "Framing":
        """The framing of a fresh adapter: chat for chat models with prompt init, else plain."""
        if token_init == "random":
            return cls("plain")
        if getattr(tokenizer, "chat_template", None):
            ending = chat_parts(tokenizer, "")[1]
            lead = next((lead for lead in CHAT_LEADS if len(_ids(tokenizer, lead + ending)) >= n), CHAT_LEADS[-1])
            return cls("chat", lead + ending)
        return cls("plain", PLAIN_LEAD)

    def to_card(self) -> dict:
        return {"kind": self.kind, "token_text": self.token_text}

    def init_token_ids(self, tokenizer, n: int) -> list[int]:
        """The n vocabulary rows the adapter tokens start from (prompt init)."""
        ids = _ids(tokenizer, self.token_text)
        if len(ids) < n:
            raise ValueError(f"token init text {self.token_text!r} has {len(ids)} tokens, fewer than {n}")
        return ids[-n:]

    def token_ids(self, tokenizer, texts: list[str], instruction: str, budget: int,
                  n: int) -> tuple[list[int], list[list[int]]]:
        """(shared prefix, per-text ids) with len(prefix) + len(row) <= budget; the text is what gets cut."""
        if self.kind == "plain":
            joined = [f"{instruction} {text}" if instruction else text for text in texts]
            return [], tokenizer(joined, truncation=True, max_length=budget)["input_ids"]
        before, after = chat_parts(tokenizer, instruction)
        prefix = _ids(tokenizer, before)
        # the part of the template's ending that the adapter tokens do not stand for follows the text
        ending = _ids(tokenizer, self.token_text)
        tail = ending[:-n] if len(ending) > n else []
        room = max(0, budget - len(prefix) - len(tail))
        rows = [row[:room] + tail for row in tokenizer(texts, add_special_tokens=False)["input_ids"]]
        return prefix, rows
