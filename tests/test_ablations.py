"""The Table 3 ablation switches change the loss parts exactly as specified (real sample data)."""

from __future__ import annotations

import pytest
import torch
from conftest import SAMPLE
from recbole.utils import init_seed

from recbole_faerec.config import build_config
from recbole_faerec.data.dataset import create_dataset, data_preparation
from recbole_faerec.model.alignment import feature_alignment_loss
from recbole_faerec.model.faerec import FAERec


@pytest.fixture
def parts(fast_config):
    """``parts(epoch, **switches)``: the three loss parts of one fixed batch, same initial weights.

    Dropout is off and every distinct batch item is aligned, so the parts are deterministic.
    """
    base = {
        **fast_config,
        "projection_dropout": 0.0,
        "hidden_dropout_prob": 0.0,
        "attn_dropout_prob": 0.0,
        "align_max_items": None,
    }
    config = build_config("SASRec", SAMPLE, config_dict=base)
    train, _, _ = data_preparation(config, create_dataset(config))
    batch = next(iter(train))

    def compute(epoch: int = 0, **switches):
        config = build_config("SASRec", SAMPLE, config_dict={**base, **switches})
        init_seed(config["seed"], True)
        model = FAERec(config, train._dataset)
        model.set_epoch(epoch)
        return model, [float(x) for x in model.calculate_loss(batch)]

    compute.batch = batch
    return compute


def test_item_and_feature_alignment_switches(parts):
    _, full = parts(15)
    _, no_item = parts(15, item_alignment=False)
    _, no_feature = parts(15, feature_alignment=False)
    assert full[1] > 0 and full[2] > 0
    assert no_item[1] == 0 and no_item[2] == pytest.approx(full[2])
    assert no_feature[2] == 0 and no_feature[1] == pytest.approx(full[1])
    assert no_item[0] == pytest.approx(full[0]) == pytest.approx(no_feature[0])


def test_curriculum_off_fixes_w_at_the_mean(parts):
    _, start = parts(0)  # w(0) = w_max = 1.0: no feature-level part
    _, fixed = parts(0, curriculum=False)  # w = (0.9 + 1.0) / 2
    _, middle = parts(15)  # w(T/2) = w_min = 0.9
    assert start[2] == 0
    assert fixed[1] == pytest.approx(start[1] * 0.95, rel=1e-5)
    assert fixed[2] == pytest.approx(middle[2] * 0.05 / 0.1, rel=1e-5)


def test_popularity_groups_off_uses_one_group(parts):
    model, grouped = parts(15)
    _, single = parts(15, popularity_groups=False)
    items = model.batch_items(parts.batch)
    with torch.no_grad():
        e_id, e_llm = model.fusion.views(items)
        whole = feature_alignment_loss(e_id, e_llm, None, model.lambd)
        split = feature_alignment_loss(e_id, e_llm, model.item_popularity[items], model.lambd)
    scale = model.alpha * (1 - 0.9)
    assert single[2] == pytest.approx(scale * float(whole), rel=1e-5)
    assert grouped[2] == pytest.approx(scale * float(split), rel=1e-5)
    assert single[2] != pytest.approx(grouped[2])


def test_fusion_without_gate_is_the_plain_mean(parts):
    model, _ = parts(0, fusion="sum")
    ids = torch.tensor([1, 2, 3])
    with torch.no_grad():
        e_id, e_llm = model.fusion.views(ids)
        torch.testing.assert_close(model.fusion(ids), 0.5 * (e_id + e_llm))
    model.zero_grad()
    sum(model.calculate_loss(parts.batch)).backward()
    assert all(p.grad is None for p in model.fusion.gate.parameters())
