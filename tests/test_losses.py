"""The chunked full-softmax cross-entropy equals PyTorch's, in value and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from recbole_faerec.model.losses import chunked_cross_entropy


@pytest.mark.parametrize("chunk_rows", [1, 3, 7, 100])
def test_value_and_gradients_match_cross_entropy(chunk_rows):
    torch.manual_seed(0)
    hidden = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    table = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    weight = table * 2.0  # a computed table, as FAERec's fused one
    targets = torch.tensor([1, 8, 3, 3, 0, 5, 2])
    expected = F.cross_entropy(hidden @ weight.T, targets)
    grads = torch.autograd.grad(expected * 3.0, (hidden, table), retain_graph=True)
    got = chunked_cross_entropy(hidden, weight, targets, chunk_rows)
    torch.testing.assert_close(got, expected)
    for a, b in zip(torch.autograd.grad(got * 3.0, (hidden, table)), grads, strict=True):
        torch.testing.assert_close(a, b)


def test_hand_computed_value_and_no_gradient_work_without_grad():
    hidden = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    weight = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([1, 2])
    # row 1 logits (0, 1, 0): -log(e / (2 + e)); row 2 logits (0, 0, 2): -log(e^2 / (2 + e^2))
    e = torch.e
    expected = (
        -torch.log(torch.tensor(e / (2 + e))) - torch.log(torch.tensor(e**2 / (2 + e**2)))
    ) / 2
    with torch.no_grad():
        torch.testing.assert_close(chunked_cross_entropy(hidden, weight, targets, 1), expected)
