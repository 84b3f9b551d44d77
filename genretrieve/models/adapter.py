"""The trainable part: 10 token rows, the reconstruction layer (d->d) and the alignment layer (d->d_T).

Instead of resizing the backbone's embedding matrix, the 10 rows live here and are written into
`inputs_embeds` at the last 10 positions; the backbone stays bit-identical and shareable, and the
adapter is one small file. An adapter folder holds `adapter.safetensors` and `adapter.json`
(the card: backbone and teacher ids and fingerprints, shapes, instructions, how it was trained);
loading it onto another backbone or teacher is refused.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic import replace_folder
from ..errors import IncompatibleArtifact, UsageError

N_TOKENS = 10
FORMAT_VERSION = 1


class GenAdapter(nn.Module):
    def __init__(self, hidden_size: int, teacher_dim: int, n_tokens: int = N_TOKENS):
        super().__init__()
        self.tokens = nn.Parameter(torch.zeros(n_tokens, hidden_size))
        self.recon = nn.Linear(hidden_size, hidden_size)
        self.align = nn.Linear(hidden_size, teacher_dim)

    @property
    def n_tokens(self) -> int:
        return self.tokens.shape[0]

    def soft_prompts(self, hidden: torch.Tensor) -> torch.Tensor:
        """H (B, n, d) -> P (B, n, d): the soft prompts the frozen LM can decode."""
        return self.recon(hidden)

    def embed(self, prompts: torch.Tensor) -> torch.Tensor:
        """P (B, n, d) -> unnormalised embedding (B, d_T): align each row, then average."""
        return self.align(prompts).mean(dim=1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.embed(self.soft_prompts(hidden))

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name, tensor in sorted(self.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]


def fresh_adapter(input_embeddings: torch.Tensor, teacher_dim: int, seed: int = 0,
                  init_ids: list[int] | None = None) -> GenAdapter:
    """A deterministic untrained adapter, P = H: token rows copied from the vocabulary rows
    `init_ids` (prompt init), or drawn like the vocabulary's rows (random init).

    Random rows use the embedding matrix's per-dimension mean and spread to keep a token's scale;
    the identity start makes the soft prompts the hidden states themselves.
    """
    generator = torch.Generator().manual_seed(seed)
    weights = input_embeddings.detach().float().cpu()
    adapter = GenAdapter(weights.shape[1], teacher_dim)
    with torch.no_grad():
        noise = torch.randn(adapter.tokens.shape, generator=generator)
        if init_ids is not None:
            adapter.tokens.copy_(weights[init_ids])
        else:
            adapter.tokens.copy_(weights.mean(0) + noise * weights.std(0))
        adapter.recon.weight.copy_(torch.eye(weights.shape[1]))
        adapter.recon.bias.zero_()
        bound = 1 / weights.shape[1] ** 0.5
        adapter.align.weight.uniform_(-bound, bound, generator=generator)
        adapter.align.bias.zero_()
    return adapter


def make_card(adapter: GenAdapter, backbone_id: str, backbone_fp: str, teacher_id: str, teacher_fp: str,
              instructions: dict, training: dict | None, framing: dict | None = None) -> dict:
    return {
        "format": FORMAT_VERSION,
        "backbone": {"id": backbone_id, "fingerprint": backbone_fp},
        "teacher": {"id": teacher_id, "fingerprint": teacher_fp},
        "hidden_size": adapter.tokens.shape[1],
        "teacher_dim": adapter.align.out_features,
        "n_tokens": adapter.n_tokens,
        "token_strings": [f"<gen_{i + 1}>" for i in range(adapter.n_tokens)],
        "instructions": instructions,
        "framing": framing or {"kind": "plain", "token_text": ""},
        "trained": training is not None,
        "training": training,
        "fingerprint": adapter.fingerprint(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def save_adapter(adapter: GenAdapter, card: dict, folder: Path) -> None:
    """Write both files to a temp folder, then swap it in, so a crash never leaves half an adapter."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 would make a shared adapter unreadable to others
    state = {k: v.detach().float().cpu().contiguous() for k, v in adapter.state_dict().items()}
    save_file(state, staging / "adapter.safetensors")
    (staging / "adapter.json").write_text(json.dumps({**card, "fingerprint": adapter.fingerprint()}, indent=2))
    replace_folder(staging, folder)


def read_card(folder: Path) -> dict:
    card_path = Path(folder) / "adapter.json"
    if not card_path.exists():
        raise UsageError(f"{folder} is not a genretrieve adapter (no adapter.json)")
    return json.loads(card_path.read_text())


def load_adapter(folder: Path, backbone_fp: str, teacher_fp: str) -> tuple[GenAdapter, dict]:
    card = read_card(folder)
    for role, fingerprint in (("backbone", backbone_fp), ("teacher", teacher_fp)):
        if card[role]["fingerprint"] != fingerprint:
            raise IncompatibleArtifact(
                f"adapter {folder} was made for {role} {card[role]['id']} (fingerprint {card[role]['fingerprint']}), "
                f"but the loaded {role} has fingerprint {fingerprint}; use a matching config or retrain")
    adapter = GenAdapter(card["hidden_size"], card["teacher_dim"], card["n_tokens"])
    adapter.load_state_dict(load_file(Path(folder) / "adapter.safetensors"))
    return adapter, card
