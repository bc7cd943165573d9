"""Full-softmax cross-entropy over the item table, computed in row chunks.

``F.cross_entropy(hidden @ weight.T, targets)`` materialises the (targets x items) logits, their
log-softmax and a gradient of the same size: with ``train_mode: all_positions`` that is ~10k x 12k
floats per batch on Beauty, and the epoch is bound by memory traffic. The chunked version computes
the loss and both gradients chunk by chunk in the forward pass (softmax minus one-hot, then two
matrix products), so no full-size logits matrix is ever stored. Values and gradients equal the
plain ones up to float rounding.
"""

from __future__ import annotations

import torch

#: Rows per chunk: a (256 x items) block stays small enough to be reused from cache.
CHUNK_ROWS = 256


class _ChunkedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk_rows):
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        grad_hidden = torch.empty_like(hidden) if need_grad else None
        grad_weight = torch.zeros_like(weight) if need_grad else None
        total = hidden.new_zeros(())
        for start in range(0, hidden.size(0), chunk_rows):
            rows = hidden[start : start + chunk_rows]
            target = targets[start : start + chunk_rows]
            logits = rows @ weight.T
            lse = torch.logsumexp(logits, dim=-1)
            total += (lse - logits.gather(1, target.unsqueeze(1)).squeeze(1)).sum()
            if need_grad:
                probs = logits.sub_(lse.unsqueeze(1)).exp_()
                probs[torch.arange(target.numel(), device=target.device), target] -= 1.0
                grad_hidden[start : start + chunk_rows] = probs @ weight
                grad_weight.addmm_(probs.T, rows)
        count = max(hidden.size(0), 1)
        ctx.count = count
        ctx.save_for_backward(grad_hidden, grad_weight)
        return total / count

    @staticmethod
    def backward(ctx, grad_output):
        grad_hidden, grad_weight = ctx.saved_tensors
        scale = grad_output / ctx.count
        return grad_hidden * scale, grad_weight * scale, None, None


def chunked_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk_rows: int = CHUNK_ROWS
) -> torch.Tensor:
    """Mean cross-entropy of ``hidden @ weight.T`` against ``targets``, without full logits.

    Args:
        hidden: (n, d) sequence representations.
        weight: (items, d) item table the rows are scored against.
        targets: (n,) target item ids.
        chunk_rows: rows processed at once.
    """
    return _ChunkedCrossEntropy.apply(hidden, weight, targets, chunk_rows)
