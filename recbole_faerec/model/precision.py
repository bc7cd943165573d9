"""Low-precision products for FAERec's training steps (``step_precision``).

FAERec's own work per training step is a handful of matrix products over the step's distinct
items: the LLM projection, the gate and InfoNCE's similarities. On a CPU with native bfloat16
instructions (``avx512_bf16``, AMX) these run several times faster in bfloat16 than in float32.
Inputs are rounded to bfloat16, products accumulate in float32 and every result goes back to
float32, so losses, softmaxes, gradients and parameters stay in float32 (the usual mixed
precision). Evaluation runs in float32, but for the text prior's cosine product at full-sort
scoring (:mod:`recbole_faerec.text_prior.prior`), which takes the same dtype.

oneDNN, which runs bfloat16 products on the CPU, builds a kernel for each new matrix shape. The
number of distinct items changes with every batch, so a product over them would pay for a new
kernel almost every step; rows are therefore padded to a multiple of :data:`ROW_BUCKET`, which
leaves a few dozen shapes per run. Padded rows are zeros or the padding item and are cut off
before any value is used, so they change no result.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PRECISIONS = ("auto", "float32", "bfloat16")
#: Row counts of low-precision products are padded to a multiple of this.
ROW_BUCKET = 256
#: Low-precision products added into a float32 tensor go in blocks of about this many entries
#: (4 MB of bfloat16), which stay in the CPU's cache between the product and the addition: the
#: whole product at once takes twice as long.
CHUNK_ENTRIES = 1 << 21


def native_bfloat16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 products natively: a CPU with ``avx512_bf16`` or AMX
    tiles, or a CUDA GPU that supports bfloat16."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def computes_bfloat16(device: torch.device | str) -> bool:
    """Whether torch computes bfloat16 products on ``device`` at all, natively or not: any CPU (a
    CPU without :func:`native_bfloat16` is slower, not different in kind), a CUDA GPU that
    supports bfloat16."""
    device = torch.device(device)
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return False


def step_dtype(precision: str, device: torch.device | str) -> torch.dtype:
    """The dtype of FAERec's training-step products for ``step_precision``: ``float32``,
    ``bfloat16``, or ``auto`` (bfloat16 where :func:`native_bfloat16`, else float32)."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"step_precision: {precision!r} is invalid; expected one of {', '.join(PRECISIONS)}."
        )
    if precision == "bfloat16" or (precision == "auto" and native_bfloat16(device)):
        return torch.bfloat16
    return torch.float32


def padded_rows(rows: int) -> int:
    """Padding that takes ``rows`` to the next multiple of :data:`ROW_BUCKET`."""
    return -rows % ROW_BUCKET


def step_matmul(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``a @ b`` for a 2-d ``a``; with a low-precision ``dtype`` the product runs in it over
    ``a`` padded with zero rows to a multiple of :data:`ROW_BUCKET`, and returns float32."""
    if dtype == torch.float32:
        return a @ b
    rows = a.size(0)
    padded = F.pad(a, (0, 0, 0, padded_rows(rows))).to(dtype)
    return (padded @ b.to(dtype))[:rows].float()


def add_matmul_(
    out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """``out += a @ b`` in place for a float32 ``out``, returned; with a low-precision ``dtype``
    the product runs in it, in blocks of rows of about :data:`CHUNK_ENTRIES` entries."""
    if dtype == torch.float32:
        return out.addmm_(a, b)
    a, b = a.to(dtype), b.to(dtype)
    rows = max(1, CHUNK_ENTRIES // out.size(1))
    for start in range(0, out.size(0), rows):
        out[start : start + rows].add_(a[start : start + rows] @ b)
    return out
