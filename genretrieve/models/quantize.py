"""int8 dynamic quantisation of a model's linear layers, for CPUs where fp32 is the fast path.

torch's `quantize_dynamic` stores nn.Linear weights as int8 and quantises activations per batch,
so nothing needs calibrating; it runs on CPU only, on fp32 models. Embeddings stay fp32, so the
weight fingerprints (taken from the input embeddings) and hence the shipped adapters still match.
Whether it is on by default is decided by the quality gate in the README (`model.quantize`).
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

QUANTIZE = ("none", "int8")


def check_quantize(quantize: str, dtype: str, device: torch.device) -> None:
    from ..errors import UsageError

    if quantize not in QUANTIZE:
        raise UsageError(f"model.quantize must be one of {', '.join(QUANTIZE)}, not {quantize!r}")
    if quantize == "int8" and device.type != "cpu":
        raise UsageError("model.quantize int8 runs on CPU only; use dtype bfloat16 on a GPU")
    if quantize == "int8" and dtype not in ("auto", "float32", "fp32"):
        raise UsageError(f"model.quantize int8 quantises fp32 weights: use dtype auto or float32, not {dtype!r}")


def quantize_linear_int8(module: nn.Module) -> nn.Module:
    """Replace the nn.Linear layers of `module` in place with dynamically quantised int8 ones."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.ao.quantization is slated to move to torchao
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(module.float(), {nn.Linear}, dtype=torch.qint8, inplace=True)
