"""Choose device and dtype: CUDA + bf16 when present; on CPU bf16 only where the CPU computes it fast.

On a CPU, bf16 pays only with bf16 matrix instructions: AMX (measured 1.7x over fp32 for the gen
encoder on a Xeon) or AVX512-BF16 (measured on an AMD EPYC Zen 5, see README `bench speed`);
without them torch emulates it and it is slower than fp32, so the CPU default depends on the
flags in /proc/cpuinfo. A config or flag overrides both. `cpu_info` is what `bench speed` reports.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")  # what changes the kernels


@lru_cache(maxsize=1)
def cpu_info() -> dict:
    """CPU model and the instruction-set flags that decide bf16 and int8 speed (Linux; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": None, "flags": []}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    return {"model": fields.get("model name"), "flags": [f for f in SPEED_FLAGS if f in flags]}


def cpu_has_fast_bf16() -> bool:
    return bool({"amx_bf16", "avx512_bf16"} & set(cpu_info()["flags"]))


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    if requested != "auto":
        if requested not in DTYPES:
            raise ValueError(f"unknown dtype {requested!r}; choose one of auto, {', '.join(DTYPES)}")
        return DTYPES[requested]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
