"""Alignment losses against hand-computed values."""

import math

import pytest
import torch

from recbole_faerec.model.alignment import (
    barlow_twins_loss,
    feature_alignment_loss,
    item_alignment_loss,
    popularity_split,
)


def test_item_alignment_matches_hand_computed_infonce():
    id_emb = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    llm_emb = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    # cosines: row 0 -> [1, 1/sqrt2]; row 1 -> [0, 1/sqrt2]; tau = 0.5 doubles them
    r = math.sqrt(2.0)
    loss0 = math.log(1 + math.exp(r - 2.0))
    loss1 = math.log(1 + math.exp(-r))
    expected = (loss0 + loss1) / 2
    assert item_alignment_loss(id_emb, llm_emb, tau=0.5).item() == pytest.approx(expected, 1e-6)


def test_item_alignment_with_sampled_negatives_matches_hand_computed_infonce():
    id_emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    llm_emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    cos = (
        torch.nn.functional.normalize(id_emb, dim=-1)
        @ torch.nn.functional.normalize(llm_emb, dim=-1).T
    )
    torch.manual_seed(3)
    (k,) = torch.randperm(3)[:1].tolist()  # the single sampled negative row
    tau = 0.5
    expected = []
    for i in range(3):
        # the anchor that was sampled has no negative left: log(e^p / e^p) = 0
        negatives = [] if i == k else [float(cos[i, k])]
        terms = [math.exp(float(cos[i, i]) / tau)] + [math.exp(c / tau) for c in negatives]
        expected.append(math.log(sum(terms)) - float(cos[i, i]) / tau)
    torch.manual_seed(3)
    loss = item_alignment_loss(id_emb, llm_emb, tau=tau, max_negatives=1)
    assert loss.item() == pytest.approx(sum(expected) / 3, 1e-6)


def test_an_anchor_whose_only_negative_is_itself_gets_zero_gradient_not_nan():
    id_emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    llm_emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    torch.manual_seed(3)
    (k,) = torch.randperm(3)[:1].tolist()
    torch.manual_seed(3)
    item_alignment_loss(id_emb, llm_emb, tau=0.5, max_negatives=1).backward()
    assert torch.isfinite(id_emb.grad).all() and torch.isfinite(llm_emb.grad).all()
    assert torch.all(id_emb.grad[k] == 0)  # its loss is log(e^p / e^p) = 0 whatever p is


def test_item_alignment_uses_every_item_when_negatives_fit():
    torch.manual_seed(0)
    id_emb, llm_emb = torch.randn(5, 4), torch.randn(5, 4)
    full = item_alignment_loss(id_emb, llm_emb, tau=0.1)
    assert item_alignment_loss(id_emb, llm_emb, tau=0.1, max_negatives=4) == pytest.approx(
        full.item(), 1e-6
    )
    # fewer negatives remove positive terms from every denominator
    assert item_alignment_loss(id_emb, llm_emb, tau=0.1, max_negatives=2) < full - 1e-4


def test_item_alignment_is_low_when_views_agree_and_high_when_swapped():
    emb = torch.eye(4)
    aligned = item_alignment_loss(emb, emb, tau=0.05)
    swapped = item_alignment_loss(emb, emb.flip(0), tau=0.05)
    assert aligned.item() < 1e-6
    assert swapped.item() > 10.0


def test_barlow_twins_matches_hand_computed_value():
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # standardised columns: [-1, 1], [-1, 1]
    b = torch.tensor([[1.0, 5.0], [2.0, 0.0]])  # standardised columns: [-1, 1], [1, -1]
    # C = [[1, -1], [1, -1]]: on-diagonal (1-1)^2 + (1+1)^2 = 4, off-diagonal 1 + 1 = 2
    loss = barlow_twins_loss(a, b, lambd=0.5, eps=1e-12)
    assert loss.item() == pytest.approx(4.0 + 0.5 * 2.0, 1e-6)


def test_barlow_twins_is_zero_for_identical_decorrelated_views():
    x = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert barlow_twins_loss(x, x, lambd=1.0, eps=1e-12).item() == pytest.approx(0.0, abs=1e-6)


def test_popularity_split_uses_the_median():
    high, low = popularity_split(torch.tensor([1, 5, 3, 10]))
    assert high.tolist() == [False, True, False, True]
    assert low.tolist() == [True, False, True, False]


def test_feature_alignment_sums_the_two_popularity_groups():
    torch.manual_seed(0)
    a, b = torch.randn(6, 3), torch.randn(6, 3)
    popularity = torch.tensor([1, 50, 2, 60, 3, 70])
    low, high = [0, 2, 4], [1, 3, 5]
    expected = barlow_twins_loss(a[low], b[low], 0.1) + barlow_twins_loss(a[high], b[high], 0.1)
    grouped = feature_alignment_loss(a, b, popularity, lambd=0.1)
    assert grouped.item() == pytest.approx(expected.item(), 1e-6)
    ungrouped = feature_alignment_loss(a, b, None, lambd=0.1)
    assert ungrouped.item() == pytest.approx(barlow_twins_loss(a, b, 0.1).item(), 1e-6)
    assert grouped.item() != pytest.approx(ungrouped.item(), 1e-3)


def test_feature_alignment_skips_a_group_of_one_item():
    a, b = torch.randn(3, 2), torch.randn(3, 2)
    popularity = torch.tensor([1, 1, 9])  # median 1: one item above it
    expected = barlow_twins_loss(a[:2], b[:2], 0.1)
    assert feature_alignment_loss(a, b, popularity, 0.1).item() == pytest.approx(expected.item())
