"""FAERec inside RecBole, end to end on the real amazon-beauty-sample."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import SAMPLE

from recbole_faerec.config import build_config
from recbole_faerec.data.dataset import create_dataset, data_preparation
from recbole_faerec.model.bare import BareBackbone
from recbole_faerec.model.faerec import FAERec
from recbole_faerec.model.fusion import FusedItemEmbedding
from recbole_faerec.quick_start import (
    load_data_and_model,
    rescore_saved_run,
    run_recbole_faerec,
)
from recbole_faerec.text_prior import fit as text_prior_fit
from recbole_faerec.text_prior import fit_text_prior
from recbole_faerec.trainer import FAERecTrainer


def _finite_metrics(result: dict) -> None:
    """Overall, head, tail and coverage metrics are finite; an empty group (a popularity bin, or
    repeat targets: nobody reviews an item twice in Beauty) is nan."""
    assert result["hit@10"] >= result["hit@5"]
    for key, value in result.items():
        empty_group = key.startswith(("group", "repeat")) and math.isnan(value)
        assert math.isfinite(value) or empty_group, key
    assert math.isnan(result["repeathit@10"])
    assert result["newhit@10"] == result["hit@10"] and result["newndcg@10"] == result["ndcg@10"]


@pytest.mark.parametrize("loss_type", ["CE", "BCE"])
def test_one_epoch_faerec_sasrec(fast_config, loss_type):
    result = run_recbole_faerec(
        "SASRec", SAMPLE, config_dict={**fast_config, "loss_type": loss_type}
    )
    _finite_metrics(result["test_result"])
    for key in ("tailhit@10", "headhit@10", "coverage@10"):
        assert key in result["test_result"]


def test_training_logs_named_finite_loss_parts(fast_config, caplog):
    config = build_config("SASRec", SAMPLE, config_dict=fast_config)
    dataset = create_dataset(config)
    train, valid, _ = data_preparation(config, dataset)
    model = FAERec(config, train._dataset)
    trainer = FAERecTrainer(config, model)
    losses = trainer._train_epoch(train, 0)  # w(0) = w_max = 1: no feature-level part yet
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert losses[1] > 0 and losses[2] == 0
    losses = trainer._train_epoch(train, 15)  # w(T/2) = w_min = 0.9
    assert losses[1] > 0 and losses[2] > 0
    line = trainer._generate_train_loss_output(0, 0.0, 1.0, losses)
    for name in ("rec", "item_align", "feature_align"):
        assert f"{name}" in line


def test_faerec_replaces_the_backbone_item_table(fast_config):
    config = build_config("SASRec", SAMPLE, config_dict=fast_config)
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    model = FAERec(config, train._dataset).eval()
    assert isinstance(model.backbone.item_embedding, FusedItemEmbedding)
    assert model.backbone.item_embedding.llm_table.shape == (dataset.item_num, 384)
    assert np.shares_memory(model.fusion.llm_table.numpy(), train._dataset.llm_embeddings)
    batch = next(iter(train))
    scores = model.full_sort_predict(batch)
    seq = model.forward(batch["item_id_list"], batch["item_length"])
    torch.testing.assert_close(scores, seq @ model.fusion.weight.T)


@pytest.mark.parametrize("base", [False, True], ids=["faerec", "bare"])
def test_the_text_prior_is_fitted_by_the_pipeline_not_by_the_model(fast_config, base):
    config = build_config("SASRec", SAMPLE, config_dict=fast_config, base=base)
    train, valid, _ = data_preparation(config, create_dataset(config))
    model = (BareBackbone if base else FAERec)(config, train._dataset)
    prior = model.text_prior
    width = prior.item_vectors.size(1)
    assert not prior.active and not prior.item_vectors.any()
    assert torch.equal(prior.transition, torch.eye(width))
    fit_text_prior(model, config, train._dataset)
    assert not prior.active  # the weight is chosen on validation, after the fit
    assert not torch.allclose(prior.transition, torch.eye(width), atol=1e-3)
    seq = next(iter(valid))[0]["item_id_list"]
    torch.testing.assert_close(prior.user_vectors(seq).norm(dim=-1), torch.ones(seq.size(0)))


def test_text_prior_off_builds_no_prior_and_no_llm_table_for_a_bare_model(fast_config):
    settings = {**fast_config, "text_prior": False}
    config = build_config("SASRec", SAMPLE, config_dict=settings, base=True)
    train, _, _ = data_preparation(config, create_dataset(config))
    assert train._dataset.llm_embeddings is None
    assert BareBackbone(config, train._dataset).text_prior is None


def test_layernorm_scoring_shares_the_backbones_input_layernorm(fast_config):
    settings = {**fast_config, "score_table": "layernorm"}
    config = build_config("SASRec", SAMPLE, config_dict=settings)
    train, _, _ = data_preparation(config, create_dataset(config))
    model = FAERec(config, train._dataset).eval()
    norm = model.backbone.LayerNorm
    with torch.no_grad():  # a trained LayerNorm: the scoring table must follow it
        norm.weight.mul_(2.0)
        norm.bias.add_(0.5)
    model.fusion.drop_eval_tables()
    e_id, e_llm = model.fusion.views()
    expected = F.layer_norm(e_id + e_llm, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
    torch.testing.assert_close(model.fusion.weight, expected)


def _fails(*_, **__):
    raise AssertionError("a load must not fit or train anything")


@pytest.mark.parametrize("prior", [True, False], ids=["prior", "no-prior"])
@pytest.mark.parametrize("base", [False, True], ids=["faerec", "bare"])
def test_reloaded_checkpoint_reproduces_the_runs_test_result(fast_config, base, prior, monkeypatch):
    settings = {**fast_config, "text_prior": prior}  # the sample's validation chooses 12 of [0, 12]
    result = run_recbole_faerec("SASRec", SAMPLE, config_dict=settings, base=base)
    assert (result["text_prior"] is not None) == prior
    for name in ("fit_text_transition", "whitened_text_vectors"):
        monkeypatch.setattr(text_prior_fit, name, _fails)
    monkeypatch.setattr(FAERecTrainer, "_train_epoch", _fails)
    monkeypatch.setattr(torch.optim.Adam, "step", _fails)
    config, model, _, train, _, test = load_data_and_model(result["model_file"])
    assert type(model) is (BareBackbone if base else FAERec)
    if prior:
        assert float(model.text_prior.weight) == 12.0
    trainer = FAERecTrainer(config, model)
    trainer.eval_collector.data_collect(train)
    reloaded = trainer.evaluate(test, load_best_model=False)
    assert dict(reloaded) == pytest.approx(dict(result["test_result"]), rel=0, abs=0, nan_ok=True)
    if prior:  # the run also reports the same checkpoint without the prior
        model.text_prior.weight.zero_()
        without = trainer.evaluate(test, load_best_model=False)
        expected = result["text_prior"]["test_result_without"]
        assert dict(without) == pytest.approx(expected, rel=0, abs=0, nan_ok=True)
        assert dict(without) != pytest.approx(dict(reloaded), nan_ok=True)
    monkeypatch.undo()
    untrained = FAERecTrainer(config, type(model)(config, train._dataset))
    untrained.eval_collector.data_collect(train)
    assert dict(untrained.evaluate(test, load_best_model=False)) != dict(reloaded)


def test_rescoring_a_saved_run_fits_the_same_prior_without_training(fast_config, monkeypatch):
    result = run_recbole_faerec("SASRec", SAMPLE, config_dict=fast_config, base=True)
    assert result["text_prior"]["weight"] == 12.0  # the prior is on: there is something to refit
    checkpoint = torch.load(result["model_file"], weights_only=False)
    checkpoint["state_dict"]["text_prior.weight"].zero_()  # as if fitted by other code
    checkpoint["state_dict"]["text_prior.transition"].normal_()
    torch.save(checkpoint, result["model_file"])
    monkeypatch.setattr(FAERecTrainer, "_train_epoch", _fails)
    rescored = rescore_saved_run(result["model_file"])
    prior, expected = rescored["text_prior"], result["text_prior"]
    assert (prior["weight"], prior["valid_scores"]) == (
        expected["weight"],
        expected["valid_scores"],
    )
    without = prior["test_result_without"]
    assert without == pytest.approx(expected["test_result_without"], rel=0, abs=0, nan_ok=True)
    assert dict(rescored["test_result"]) == pytest.approx(
        dict(result["test_result"]), rel=0, abs=0, nan_ok=True
    )
    valid = rescored["best_valid_result"]
    assert dict(valid) == pytest.approx(dict(result["best_valid_result"]), rel=0, nan_ok=True)
    saved = torch.load(result["model_file"], weights_only=False)["state_dict"]
    assert float(saved["text_prior.weight"]) == 12.0  # the checkpoint holds the refitted prior


def test_base_trains_the_bare_backbone(fast_config):
    result = run_recbole_faerec("SASRec", SAMPLE, config_dict=fast_config, base=True)
    _finite_metrics(result["test_result"])
    assert Path(result["model_file"]).name.startswith("SASRec-")
    checkpoint = torch.load(result["model_file"], weights_only=False)
    assert checkpoint["config"]["model"] == "SASRec"
    keys = checkpoint["state_dict"].keys()
    assert "backbone.item_embedding.weight" in keys
    assert not any("llm_table" in key or "gate" in key for key in keys)


def test_training_popularity_counts_training_interactions_only(fast_config, sample_data_path):
    config = build_config("SASRec", SAMPLE, config_dict=fast_config, base=True)
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    inter = pd.read_csv(sample_data_path / SAMPLE / f"{SAMPLE}.inter", sep="\t", dtype=str)
    inter.columns = [c.split(":")[0] for c in inter.columns]
    inter["timestamp"] = inter["timestamp"].astype(float)
    inter = inter.sort_values(["user_id", "timestamp"], kind="stable")
    position_from_end = inter.groupby("user_id").cumcount(ascending=False)
    training = inter[position_from_end >= 2]
    expected = training["item_id"].value_counts()
    popularity = train._dataset.train_item_popularity
    tokens = dataset.field2id_token["item_id"]
    got = {tokens[i]: int(c) for i, c in enumerate(popularity) if c}
    assert got == expected.to_dict()
    counter = train._dataset.item_counter
    assert sum(counter.values()) == len(training)
    assert np.all(train._dataset.train_item_popularity == popularity)


def test_each_run_in_one_process_logs_to_its_own_file(fast_config):
    config = {**fast_config, "state": "INFO"}
    first = run_recbole_faerec("SASRec", SAMPLE, config_dict=config, base=True)
    second = run_recbole_faerec("SASRec", SAMPLE, config_dict=config)
    assert first["results_file"] != second["results_file"]
    for result, model in ((first, "SASRec"), (second, "FAERec")):
        log = Path(result["results_file"]).with_suffix("").with_suffix(".log")
        assert log.parent.name == model
        assert "epoch 0 training" in log.read_text(encoding="utf-8")
