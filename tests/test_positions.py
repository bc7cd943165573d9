"""Positions counted from the newest item (``positions_from_end``) and the negative pool."""

from __future__ import annotations

import torch
from conftest import SAMPLE
from torch import nn

from recbole_faerec.config import build_config
from recbole_faerec.data.dataset import create_dataset, data_preparation
from recbole_faerec.model.bare import BareBackbone, PositionsFromEnd


def test_positions_count_back_from_the_newest_item():
    table = nn.Embedding(5, 1)
    table.weight.data = torch.arange(5.0).unsqueeze(1)  # row r holds the value r
    positions = PositionsFromEnd(table)
    ids = torch.arange(3).unsqueeze(0).expand(2, 3)
    positions.lengths = torch.tensor([2, 3])
    # max length 5: a row of length n puts its newest item (index n - 1) on row 4
    assert positions(ids).squeeze(-1).tolist() == [[3.0, 4.0, 4.0], [2.0, 3.0, 4.0]]


def _bare(fast_config, **overrides):
    config = build_config("SASRec", SAMPLE, config_dict={**fast_config, **overrides}, base=True)
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    torch.manual_seed(0)
    return config, BareBackbone(config, train._dataset).eval()


def test_right_padding_with_positions_from_end_equals_sasrec_on_left_padding(fast_config):
    config, model = _bare(fast_config, positions_from_end=True)
    sasrec = model.backbone  # RecBole's SASRec; its position table is now wrapped
    max_len = config["MAX_ITEM_LIST_LENGTH"]
    right = torch.tensor([[4, 9, 2, 0], [7, 0, 0, 0]])
    lengths = torch.tensor([3, 1])
    with torch.no_grad():
        ours = model(right, lengths)
        left = torch.zeros(2, max_len, dtype=torch.long)
        left[0, -3:] = torch.tensor([4, 9, 2])
        left[1, -1] = 7
        model.positions_from_end.lengths = None  # plain positions 0..max_len-1, as SASRec's code
        full = torch.full((2,), max_len)
        theirs = sasrec(left, full)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_negatives_are_uniform_over_the_catalog(fast_config):
    _, model = _bare(fast_config)
    torch.manual_seed(0)
    negatives = model.sample_negatives(torch.ones(1_000_000, dtype=torch.long))
    counts = torch.bincount(negatives, minlength=model.n_items)[2:].float()
    assert counts.std() / counts.mean() < 0.15  # Poisson spread of about 134 draws per item
