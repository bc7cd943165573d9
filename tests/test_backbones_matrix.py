"""FAERec around every supported backbone, one epoch each on the real amazon-beauty-sample."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import SAMPLE

from recbole_faerec.config import build_config
from recbole_faerec.data.dataset import create_dataset, data_preparation
from recbole_faerec.model.faerec import FAERec
from recbole_faerec.model.fusion import FusedItemEmbedding
from recbole_faerec.supported_backbones import (
    SUPPORTED,
    UNSUPPORTED,
    format_backbone_list,
    train_modes,
)
from recbole_faerec.trainer import FAERecTrainer

#: Settings a backbone needs beyond the small shared ones (FEARec divides by n_layers - 1).
NEEDS = {"FEARec": {"n_layers": 2}}


# Sixteen tiny models: one torch thread avoids oversubscription on a loaded 2-core CI box.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _other_item_tables(model: FAERec, n_items: int) -> list[str]:
    """Backbone parameters, besides the fused table, with a row per item."""
    return [
        name
        for name, param in model.backbone.named_parameters()
        if param.dim() == 2 and param.size(0) >= n_items and not name.startswith("item_embedding.")
    ]


@pytest.mark.parametrize("backbone", SUPPORTED)
def test_one_faerec_epoch_around_every_supported_backbone(fast_config, backbone, monkeypatch):
    config = build_config(
        backbone,
        SAMPLE,
        config_dict={**fast_config, "train_batch_size": 512, **NEEDS.get(backbone, {})},
    )
    dataset = create_dataset(config)
    train, valid, _ = data_preparation(config, dataset)
    model = FAERec(config, train._dataset)
    assert isinstance(model.backbone.item_embedding, FusedItemEmbedding)
    assert _other_item_tables(model, dataset.item_num) == []

    trainer = FAERecTrainer(config, model)
    losses = trainer._train_epoch(train, 0)
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses), losses
    assert losses[1] > 0

    reads = []
    weight = FusedItemEmbedding.weight

    def spy(self):
        table = weight.fget(self)
        reads.append(table.shape)
        return table

    monkeypatch.setattr(FusedItemEmbedding, "weight", property(spy))
    trainer.eval_collector.data_collect(train)
    result = trainer.evaluate(valid, load_best_model=False)
    assert reads, f"{backbone} scored without reading the fused table"
    assert reads[0][0] >= dataset.item_num
    for key in ("hit@10", "ndcg@10", "tailhit@10", "coverage@10"):
        assert math.isfinite(result[key]), key
    assert 0 <= result["hit@10"] <= 1


def test_list_backbones_names_modes_and_reasons():
    listing = format_backbone_list()
    for name in SUPPORTED:
        assert f"\n{name} " in listing
    assert "SASRec       CE,BPR,BCE     prefix, all_positions" in listing
    assert "BERT4Rec     CE,BPR         prefix" in listing
    for name, reason in UNSUPPORTED.items():
        assert f"{name}: {reason}" in listing
    assert train_modes("NARM") == ("prefix",)


def test_bert4rec_mask_row_and_output_bias_are_kept(fast_config):
    settings = {**fast_config, "text_prior": False}
    config = build_config("BERT4Rec", SAMPLE, config_dict=settings)
    dataset = create_dataset(config)
    train, _, test = data_preparation(config, dataset)
    model = FAERec(config, train._dataset).eval()
    fused = model.fusion
    assert fused.num_items == dataset.item_num
    assert fused.num_embeddings == dataset.item_num + 1  # BERT4Rec's mask token
    mask_id = torch.tensor([model.backbone.mask_token])
    torch.testing.assert_close(fused(mask_id), fused.extra_embedding.weight[:1])
    batch = next(iter(test))[0]
    with torch.no_grad():
        scores = model.full_sort_predict(batch)
        model.backbone.output_bias.data[5] += 100.0
        bumped = model.full_sort_predict(batch)
    assert scores.shape[-1] == dataset.item_num
    torch.testing.assert_close(bumped[:, 5] - scores[:, 5], torch.full_like(scores[:, 5], 100.0))
