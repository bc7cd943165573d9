"""The native FMLP-Rec, LRURec and gMLP backbones: causality, exactness checks and a real run."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.trainer import Trainer

from recbole_faerec.model.sequential_recommender import FMLPRec, LRURec, gMLP
from recbole_faerec.model.sequential_recommender.fmlprec import CausalFilterLayer
from recbole_faerec.model.sequential_recommender.lrurec import LRULayer

MODELS = [FMLPRec, LRURec, gMLP]
PROPERTIES = Path(__file__).resolve().parents[1] / "properties" / "model"
SEQ_LEN = 12
N_ITEMS = 50


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _FakeDataset:
    """Just enough of a RecBole dataset to build a model: the item count."""

    def num(self, field: str) -> int:
        return N_ITEMS


def _config(model_class, monkeypatch, **overrides) -> Config:
    monkeypatch.setattr(sys, "argv", ["x"])
    config_dict = {
        "hidden_size": 16,
        "inner_size": 32,
        "state_size": 8,
        "n_layers": 2,
        "MAX_ITEM_LIST_LENGTH": SEQ_LEN,
        "hidden_dropout_prob": 0.1,
        "device": "cpu",
        "train_neg_sample_args": None,
        **overrides,
    }
    return Config(
        model=model_class,
        dataset="ml-100k",
        config_file_list=[str(PROPERTIES / f"{model_class.__name__}.yaml")],
        config_dict=config_dict,
    )


def _full_output(model, item_seq: torch.Tensor) -> torch.Tensor:
    """Per-position outputs (B, L, H), obtained the way the plugin gets them."""
    model.gather_indexes = lambda out, idx: out
    try:
        lengths = (item_seq != 0).sum(dim=1)
        return model(item_seq, lengths)
    finally:
        del model.gather_indexes


@pytest.mark.parametrize("model_class", MODELS)
def test_per_position_outputs_are_causal(model_class, monkeypatch):
    torch.manual_seed(0)
    model = model_class(_config(model_class, monkeypatch), _FakeDataset()).eval()
    seq_len = 9
    item_seq = torch.zeros(2, SEQ_LEN, dtype=torch.long)
    item_seq[:, :seq_len] = torch.randint(1, N_ITEMS, (2, seq_len))
    base = _full_output(model, item_seq)
    assert base.shape == (2, SEQ_LEN, 16)
    for k in (0, 3, seq_len - 1):
        perturbed = item_seq.clone()
        perturbed[:, k] = perturbed[:, k] % (N_ITEMS - 1) + 1
        out = _full_output(model, perturbed)
        torch.testing.assert_close(out[:, :k], base[:, :k], rtol=0, atol=1e-6)
        assert (out[:, k:] - base[:, k:]).abs().amax() > 1e-4


@pytest.mark.parametrize("model_class", MODELS)
def test_gather_returns_last_valid_position(model_class, monkeypatch):
    torch.manual_seed(0)
    model = model_class(_config(model_class, monkeypatch), _FakeDataset()).eval()
    item_seq = torch.zeros(3, SEQ_LEN, dtype=torch.long)
    lengths = torch.tensor([1, 5, SEQ_LEN])
    for row, length in enumerate(lengths):
        item_seq[row, :length] = torch.randint(1, N_ITEMS, (int(length),))
    full = _full_output(model, item_seq)
    last = model(item_seq, lengths)
    torch.testing.assert_close(last, full[torch.arange(3), lengths - 1])


@pytest.mark.parametrize("seq_len", [1, 2, 5, 7, 8, 13, 16, 31])
def test_lru_parallel_scan_matches_sequential_recurrence(seq_len):
    torch.manual_seed(seq_len)
    layer = LRULayer(
        hidden_size=6,
        state_size=5,
        r_min=0.5,
        r_max=0.99,
        max_phase=2 * math.pi,
        hidden_dropout_prob=0.0,
        layer_norm_eps=1e-12,
    ).double()
    inputs = torch.complex(
        torch.randn(3, seq_len, 5, dtype=torch.float64),
        torch.randn(3, seq_len, 5, dtype=torch.float64),
    )
    torch.testing.assert_close(
        layer.parallel_scan(inputs), layer.sequential_scan(inputs), rtol=1e-10, atol=1e-12
    )


def test_lru_initialisation_lies_on_the_ring():
    torch.manual_seed(0)
    layer = LRULayer(8, 256, 0.4, 0.9, math.pi / 4, 0.0, 1e-12)
    weight = layer.recurrence_weight()
    assert weight.abs().min() >= 0.4 - 1e-6 and weight.abs().max() <= 0.9 + 1e-6
    assert weight.angle().min() >= 0 and weight.angle().max() <= math.pi / 4 + 1e-6
    torch.testing.assert_close(torch.exp(layer.gamma_log), torch.sqrt(1 - weight.abs() ** 2))


def test_lru_sublayer_with_zero_projections_passes_only_the_residual():
    layer = LRULayer(6, 5, 0.5, 0.99, 2 * math.pi, 0.0, 1e-12).double()
    assert all(p.abs().max() <= 0.04 for p in (layer.B_re, layer.C_im, layer.b_re, layer.c))
    with torch.no_grad():
        for weight in (layer.B_re, layer.B_im, layer.b_re, layer.b_im, layer.C_re, layer.C_im):
            weight.zero_()
        layer.c.fill_(0.5)
    x = torch.randn(2, 7, 6, dtype=torch.float64)
    # no skip term D x inside the sublayer: the output is LayerNorm(c + x)
    torch.testing.assert_close(layer(x), layer.LayerNorm(x + 0.5))


def test_lru_state_defaults_to_twice_the_hidden_size(monkeypatch):
    model = LRURec(_config(LRURec, monkeypatch, state_size=None), _FakeDataset())
    assert model.blocks[0].lru.B_re.shape == (32, 16)
    assert model.position_embedding is None  # LRURec uses none


def test_fmlp_identity_impulse_response_returns_input():
    layer = CausalFilterLayer(SEQ_LEN, 8, 0.0, 1e-12, 0.02).double()
    with torch.no_grad():
        layer.impulse_response.zero_()
        layer.impulse_response[0] = 1.0
    for seq_len in (SEQ_LEN, 7):
        x = torch.randn(2, seq_len, 8, dtype=torch.float64)
        torch.testing.assert_close(layer.filter(x), x, rtol=0, atol=1e-12)


def test_fmlp_filter_is_the_linear_causal_convolution():
    torch.manual_seed(0)
    layer = CausalFilterLayer(SEQ_LEN, 4, 0.0, 1e-12, 0.5).double()
    x = torch.randn(2, SEQ_LEN, 4, dtype=torch.float64)
    kernel = layer.impulse_response.detach()
    expected = torch.stack(
        [sum(kernel[s] * x[:, t - s] for s in range(t + 1)) for t in range(SEQ_LEN)], dim=1
    )
    torch.testing.assert_close(layer.filter(x), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("model_class", MODELS)
def test_unknown_loss_type_is_rejected(model_class, monkeypatch):
    config = _config(model_class, monkeypatch, loss_type="BCE")
    with pytest.raises(NotImplementedError, match="BPR"):
        model_class(config, _FakeDataset())


def _ml100k(model_class, tmp_path, monkeypatch, **overrides):
    monkeypatch.chdir(tmp_path)
    config = _config(
        model_class,
        monkeypatch,
        epochs=1,
        train_batch_size=512,
        eval_batch_size=1024,
        eval_args={"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
        show_progress=False,
        state="WARNING",
        checkpoint_dir=str(tmp_path / "saved"),
        MAX_ITEM_LIST_LENGTH=20,
        seed=3,
        **overrides,
    )
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    return config, train, valid, test


@pytest.mark.parametrize("model_class", MODELS)
def test_one_epoch_on_ml100k(model_class, tmp_path, monkeypatch):
    config, train, valid, test = _ml100k(model_class, tmp_path, monkeypatch, loss_type="CE")
    model = model_class(config, train._dataset)
    trainer = Trainer(config, model)
    _, valid_result = trainer.fit(train, valid, saved=True)
    test_result = trainer.evaluate(test, load_best_model=True)
    assert math.isfinite(trainer.train_loss_dict[0])
    assert valid_result and test_result
    assert all(math.isfinite(v) for v in {**valid_result, **test_result}.values())


@pytest.mark.parametrize("model_class", MODELS)
def test_bpr_loss_step_on_ml100k(model_class, tmp_path, monkeypatch):
    config, train, _, _ = _ml100k(
        model_class,
        tmp_path,
        monkeypatch,
        loss_type="BPR",
        train_neg_sample_args={"distribution": "uniform", "sample_num": 1},
    )
    model = model_class(config, train._dataset)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = next(iter(train))
    loss = model.calculate_loss(batch)
    assert loss.ndim == 0 and math.isfinite(loss.item())
    loss.backward()
    optimizer.step()
    scores = model.predict(batch)
    assert scores.shape == (len(batch),) and torch.isfinite(scores).all()
