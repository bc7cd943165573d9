"""The all-positions training protocol: targets, negatives, padding and exactness."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import SAMPLE
from recbole.data.interaction import Interaction

from recbole_faerec.config import build_config
from recbole_faerec.data.dataset import create_dataset, data_preparation
from recbole_faerec.model.bare import BareBackbone, next_item_targets
from recbole_faerec.quick_start import run_recbole_faerec


def test_next_item_targets_on_a_hand_made_sequence():
    seq = torch.tensor([[5, 6, 7, 0], [8, 0, 0, 0], [1, 2, 3, 4]])
    length = torch.tensor([3, 1, 4])
    target = torch.tensor([9, 4, 11])
    expected = [[6, 7, 9, 0], [4, 0, 0, 0], [2, 3, 4, 11]]
    assert next_item_targets(seq, length, target).tolist() == expected


def _data(fast_config, **overrides):
    config = build_config("SASRec", SAMPLE, config_dict={**fast_config, **overrides}, base=True)
    dataset = create_dataset(config)
    return config, dataset, *data_preparation(config, dataset)


def test_training_split_keeps_the_longest_prefix_per_user(fast_config):
    _, _, prefix_train, prefix_valid, _ = _data(fast_config)
    _, _, train, valid, _ = _data(fast_config, train_mode="all_positions")
    rows = train._dataset.inter_feat
    users = rows["user_id"].numpy()
    assert len(set(users)) == len(users) == prefix_train._dataset.user_num - 1
    prefix_rows = prefix_train._dataset.inter_feat
    longest = {}
    pairs = zip(prefix_rows["user_id"].tolist(), prefix_rows["item_length"].tolist(), strict=True)
    for u, n in pairs:
        longest[u] = max(longest.get(u, 0), n)
    kept = zip(users.tolist(), rows["item_length"].tolist(), strict=True)
    assert dict(kept) == longest
    torch.testing.assert_close(
        valid._dataset.inter_feat["item_id"], prefix_valid._dataset.inter_feat["item_id"]
    )
    assert (
        train._dataset.train_item_popularity == prefix_train._dataset.train_item_popularity
    ).all()


def _model(config, train, loss_type):
    config["loss_type"] = loss_type
    torch.manual_seed(0)
    return BareBackbone(config, train._dataset).eval()


def test_negatives_never_equal_the_positive_and_padding_has_none(fast_config):
    config, _, train, _, _ = _data(fast_config, train_mode="all_positions", loss_type="BCE")
    model = _model(config, train, "BCE")
    batch = next(iter(train))
    model.prepare_batch(batch)
    targets = model.targets(batch)
    negatives = batch["neg_item_id"]
    valid = targets != 0
    assert torch.all(negatives[valid] != targets[valid])
    assert torch.all((negatives[valid] >= 1) & (negatives[valid] < model.n_items))
    assert torch.all(negatives[~valid] == 0)


def test_padding_positions_carry_no_loss(fast_config):
    config, _, train, _, _ = _data(fast_config, train_mode="all_positions", loss_type="BCE")
    model = _model(config, train, "BCE")
    batch = next(iter(train))
    model.prepare_batch(batch)
    with torch.no_grad():
        loss = model.recommendation_loss(batch)
        padding = model.targets(batch) == 0
        assert padding.any()
        batch["neg_item_id"] = torch.where(
            padding, torch.ones_like(padding).long() * 3, batch["neg_item_id"]
        )
        assert model.recommendation_loss(batch).item() == pytest.approx(loss.item(), rel=1e-6)


def _prefix_rows(batch, targets, negatives):
    """Every (prefix, next item, negative) of the batch as separate prefix-mode rows."""
    seqs, lens, tgts, negs = [], [], [], []
    rows = zip(batch["item_id_list"], batch["item_length"], targets, negatives, strict=True)
    for seq, n, tgt, neg in rows:
        for p in range(int(n)):
            prefix = torch.zeros_like(seq)
            prefix[: p + 1] = seq[: p + 1]
            seqs.append(prefix)
            lens.append(p + 1)
            tgts.append(tgt[p])
            negs.append(neg[p])
    return torch.stack(seqs), torch.tensor(lens), torch.stack(tgts), torch.stack(negs)


@pytest.mark.parametrize("loss_type", ["CE", "BCE"])
def test_all_positions_loss_is_the_mean_of_prefix_losses(fast_config, loss_type):
    # exact with positions counted from the oldest item; counted from the newest (SASRec's
    # original), a prefix's last item moves to the last position, as in the authors' code
    config, _, train, _, _ = _data(
        fast_config,
        train_mode="all_positions",
        loss_type=loss_type,
        train_batch_size=16,
        positions_from_end=False,
    )
    model = _model(config, train, loss_type)
    batch = next(iter(train))
    model.prepare_batch(batch)
    targets = model.targets(batch)
    negatives = batch["neg_item_id"] if loss_type == "BCE" else torch.zeros_like(targets)
    with torch.no_grad():
        all_positions = model.recommendation_loss(batch).item()
        seqs, lens, tgts, negs = _prefix_rows(batch, targets, negatives)
        model.all_positions = False
        one_by_one = []
        for i in range(len(lens)):
            row = Interaction(
                {
                    "item_id_list": seqs[i : i + 1],
                    "item_length": lens[i : i + 1],
                    "item_id": tgts[i : i + 1],
                    "neg_item_id": negs[i : i + 1],
                }
            )
            one_by_one.append(model.recommendation_loss(row).item())
    assert len(one_by_one) == int((targets != 0).sum())
    assert all_positions == pytest.approx(sum(one_by_one) / len(one_by_one), rel=1e-5)


@pytest.mark.parametrize("base", [True, False])
def test_one_epoch_in_all_positions_mode(fast_config, base):
    config_dict = {**fast_config, "train_mode": "all_positions", "loss_type": "BCE"}
    result = run_recbole_faerec("SASRec", SAMPLE, config_dict=config_dict, base=base)
    assert math.isfinite(result["test_result"]["ndcg@10"])
    assert math.isfinite(result["test_result"]["tailhit@10"])


def test_all_positions_rejects_backbones_without_per_position_output(fast_config):
    with pytest.raises(ValueError, match="train_mode: 'NARM' supports `train_mode: prefix` only"):
        config = build_config(
            "NARM", SAMPLE, config_dict={**fast_config, "train_mode": "all_positions"}, base=True
        )
        dataset = create_dataset(config)
        train, _, _ = data_preparation(config, dataset)
        BareBackbone(config, train._dataset)
