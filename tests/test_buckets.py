"""Batches of similar length and trimmed padding: same rows, same scores, less work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recbole_faerec.config import build_config
from recbole_faerec.data.buckets import LengthBucketTrainDataLoader, bucketed_order
from recbole_faerec.data.dataset import create_dataset, data_preparation
from recbole_faerec.data.loaders import SequentialFullSortEvalDataLoader
from recbole_faerec.model.registry import get_model


def test_bucketed_order_is_a_permutation_with_homogeneous_batches():
    lengths = np.tile([1, 50], 256)
    order = bucketed_order(lengths, batch_size=4, pool_batches=128, rng=np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(512))
    batches = lengths[order].reshape(-1, 4)
    assert (batches.max(axis=1) == batches.min(axis=1)).all()
    # Batches come in random order, not all short ones first.
    assert len(set(batches[:64, 0].tolist())) == 2


def test_bucketed_order_keeps_the_short_batch_last():
    lengths = np.arange(10) % 3
    order = bucketed_order(lengths, batch_size=4, pool_batches=1, rng=np.random.default_rng(1))
    assert sorted(order.tolist()) == list(range(10))
    for start in (0, 4):  # the full batches are sorted inside
        assert list(lengths[order[start : start + 4]]) == sorted(lengths[order[start : start + 4]])


def _sample_config(fast_config, **overrides):
    return build_config(
        "SASRec",
        "amazon-beauty-sample",
        config_dict={
            **fast_config,
            "loss_type": "BCE",
            "train_mode": "all_positions",
            "train_batch_size": 64,
            "length_bucket_pool": 4,
            **overrides,
        },
        base=True,
    )


def test_training_loader_yields_every_row_once_in_length_buckets(fast_config):
    config = _sample_config(fast_config)
    train, valid, _ = data_preparation(config, create_dataset(config))
    assert isinstance(train, LengthBucketTrainDataLoader)
    assert isinstance(valid, SequentialFullSortEvalDataLoader)
    epochs = []
    for _ in range(2):
        users, spread = [], []
        for batch in train:
            users += batch["user_id"].tolist()
            lengths = batch["item_length"]
            spread.append(int(lengths.max() - lengths.min()))
        assert sorted(users) == sorted(train._dataset.inter_feat["user_id"].tolist())
        epochs.append(users)
        # Sorted within pools of 4 batches: far less spread than random batches of 64 rows.
        shuffled = np.random.default_rng(0).permutation(train.lengths)
        random_spread = [np.ptp(shuffled[i : i + 64]) for i in range(0, len(shuffled), 64)]
        assert np.mean(spread) < np.mean(random_spread) / 2
    assert epochs[0] != epochs[1]


def test_random_batches_when_the_pool_is_zero(fast_config):
    config = _sample_config(fast_config, length_bucket_pool=0)
    train, _, _ = data_preparation(config, create_dataset(config))
    assert not isinstance(train, LengthBucketTrainDataLoader)


@pytest.mark.parametrize("backbone", ["SASRec", "GRU4Rec", "FMLPRec", "LRURec"])
def test_trimmed_batches_score_like_padded_ones(fast_config, backbone):
    settings = {**fast_config, "eval_batch_size": 256}  # the first batch: the shortest rows
    config = build_config(backbone, "amazon-beauty-sample", config_dict=settings, base=True)
    torch.manual_seed(0)
    _, valid, _ = data_preparation(config, create_dataset(config))
    model = get_model("BareBackbone")(config, valid._dataset).eval()
    assert model.trims_padding
    batch = next(iter(valid))[0]
    padded = batch["item_id_list"].clone()
    if model.positions_from_end is not None:  # RecBole's own call: give it the lengths
        model.positions_from_end.lengths = batch["item_length"]
    with torch.no_grad():
        expected = model.backbone.full_sort_predict(batch)
        scores = model.full_sort_predict(batch)
    assert batch["item_id_list"].size(1) == int(batch["item_length"].max()) < padded.size(1)
    torch.testing.assert_close(scores, expected, rtol=1e-4, atol=1e-5)
