"""The paper's LLM-enhanced baselines, LLMInit and LLM-ESR: their loss parts against hand-computed
values, the causal cross-attention, the users' retrieval from training items only, and the
methods end to end in RecBole on the real amazon-beauty-sample."""

from __future__ import annotations

import importlib.util
import logging
import math
import pickle
import random
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SAMPLE, FakeProvider, same_metrics

from recbole_faerec.config import build_config
from recbole_faerec.data import similar_users as similar_users_module
from recbole_faerec.data.dataset import create_dataset, data_preparation
from recbole_faerec.data.similar_users import most_similar, training_histories
from recbole_faerec.embeddings import resolve_embedding_table
from recbole_faerec.embeddings import users as user_embeddings
from recbole_faerec.io import ConfigError
from recbole_faerec.model.dual_view import ViewCrossAttention
from recbole_faerec.model.fusion import pca_initialisation
from recbole_faerec.model.llmesr import LLMESR, distillation_loss, soft_contrastive_loss
from recbole_faerec.model.llminit import LLMInit
from recbole_faerec.quick_start import load_data_and_model, run_recbole_faerec
from recbole_faerec.trainer import FAERecTrainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- loss parts on tiny tensors ----------------------------------------------------------------
def test_soft_contrastive_loss_of_orthonormal_pairs():
    # logits = I; targets = softmax((I + I) / 2) = rows (e, 1) / (e + 1): both directions give the
    # cross-entropy of that distribution with itself, its entropy ln(1 + e) - e / (1 + e).
    x = torch.eye(2)
    expected = math.log(1 + math.e) - math.e / (1 + math.e)
    assert float(soft_contrastive_loss(x, x.clone())) == pytest.approx(expected, abs=1e-6)


def test_soft_contrastive_loss_of_unequal_pairs():
    # x = [[1, 0], [0, 0]], y = [[0, 0], [0, 1]]: logits x y^T = 0, so each row's log-softmax is
    # ln(1/2); targets = softmax((diag(1, 0) + diag(0, 1)) / 2) = uniform; loss = ln 2.
    x = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    y = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    assert float(soft_contrastive_loss(x, y)) == pytest.approx(math.log(2), abs=1e-6)


def test_distillation_losses():
    student = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    teacher = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    assert float(distillation_loss(student, teacher, "mse")) == pytest.approx((1 + 4 + 0 + 1) / 4)
    contrastive = distillation_loss(student, teacher, "contrastive")
    assert float(contrastive) == pytest.approx(float(soft_contrastive_loss(student, teacher)))


def test_cross_attention_is_causal_and_ignores_padding():
    torch.manual_seed(0)
    attention = ViewCrossAttention(8)
    queries, context = torch.randn(1, 4, 8), torch.randn(1, 4, 8)
    keep = torch.tensor([[True, True, True, False]])
    out = attention(queries, context, keep)
    later = context.clone()
    later[:, 2:] = torch.randn(1, 2, 8)  # position 2 and the padding after it
    changed = attention(queries, later, keep)
    torch.testing.assert_close(changed[:, :2], out[:, :2])  # no position sees a later item
    assert not torch.allclose(changed[:, 2], out[:, 2])
    padded = context.clone()
    padded[:, 3] = 100.0
    torch.testing.assert_close(attention(queries, padded, keep)[:, :3], out[:, :3])
    # the first position attends to itself alone: its value, projected
    first = attention.output(attention.value(context[:, 0]))
    torch.testing.assert_close(out[:, 0], first)


def test_most_similar_leaves_out_the_user_and_empty_rows():
    vectors = torch.tensor(
        [[0.0, 0.0], [1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.6, 0.8], [-1.0, 0.0]]
    )
    neighbours = most_similar(vectors, 2)
    assert neighbours[1].tolist() == [2, 4]
    assert neighbours[3].tolist() == [4, 2]
    assert neighbours[5].tolist() == [3, 4]  # cosines 0, -0.6, -0.99, -1
    assert 0 not in neighbours[1:].flatten().tolist()


def test_llmesr_keys_are_checked(fast_config):
    with pytest.raises(ConfigError, match="llmesr_distill_loss: 'kl' is invalid"):
        build_config(
            "SASRec",
            SAMPLE,
            config_dict={**fast_config, "llmesr_distill_loss": "kl"},
            method="llmesr",
        )
    with pytest.raises(ConfigError, match="llmesr_teacher_refresh: 'batch' is invalid"):
        build_config(
            "SASRec",
            SAMPLE,
            config_dict={**fast_config, "llmesr_teacher_refresh": "batch"},
            method="llmesr",
        )
    with pytest.raises(ConfigError, match="method: 'llmesrr' is not a method"):
        build_config("SASRec", SAMPLE, config_dict=fast_config, method="llmesrr")


# -- the users' retrieval: training items only ------------------------------------------------
@pytest.fixture
def fake_users(monkeypatch):
    """User embeddings from the fake provider (vectors from the prompt's hash); records the
    prompt of every user token that the user tables are built from."""
    provider = FakeProvider(batch_size=256, dim=16)
    monkeypatch.setattr(user_embeddings, "make_provider", lambda settings: provider)
    prompts: dict[str, str] = {}
    build = user_embeddings.build_user_table

    def recording(config, user_tokens, histories, show_progress=True, provider=None):
        names = user_embeddings.item_names(config["data_path"], config["dataset"])
        for token, history in zip(user_tokens, histories, strict=True):
            if history:
                prompts[str(token)] = user_embeddings.user_prompt(history, names, "beauty sample")
        return build(config, user_tokens, histories, show_progress, provider)

    monkeypatch.setattr(similar_users_module, "build_user_table", recording)
    return prompts


def _llmesr_train_split(settings: dict):
    config = build_config("SASRec", SAMPLE, config_dict=settings, method="llmesr")
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    return dataset, train._dataset, config


def _inter_frame(path) -> pd.DataFrame:
    inter = pd.read_csv(path, sep="\t", dtype=str)
    inter["order"] = inter["timestamp:float"].astype(float)
    return inter


def test_user_histories_hold_the_training_items_in_order(fast_config, fake_users):
    settings = {**fast_config, "train_mode": "prefix", "loss_type": "BCE"}
    dataset, train, _ = _llmesr_train_split(settings)  # a row per training prefix
    inter = _inter_frame(f"{settings['data_path']}/{SAMPLE}/{SAMPLE}.inter")
    inter = inter.sort_values(["user_id:token", "order"], kind="stable")
    expected = inter.groupby("user_id:token")["item_id:token"].agg(lambda s: list(s)[:-2])
    item_tokens = dataset.field2id_token["item_id"]
    user_tokens = dataset.field2id_token["user_id"]
    histories = training_histories(train)
    got = {user_tokens[u]: [item_tokens[i] for i in h] for u, h in enumerate(histories) if h}
    assert got == expected.to_dict()
    assert train.similar_users.shape == (dataset.user_num, 10)


def test_validation_and_test_items_change_neither_embeddings_nor_neighbours(
    fast_config, fake_users, tmp_path
):
    settings = {**fast_config, "train_mode": "all_positions", "loss_type": "BCE"}
    dataset, train, config = _llmesr_train_split(settings)
    prompts = dict(fake_users)
    tokens = dataset.field2id_token["user_id"]
    neighbours = {tokens[u]: tokens[row].tolist() for u, row in enumerate(train.similar_users)}

    # every user's validation and test items replaced by other (popular) items
    source = f"{settings['data_path']}/{SAMPLE}"
    inter = _inter_frame(f"{source}/{SAMPLE}.inter").sort_values(
        ["user_id:token", "order"], kind="stable"
    )
    last_two = inter.groupby("user_id:token").cumcount(ascending=False) < 2
    popular = inter["item_id:token"].value_counts().index[:2].tolist()
    inter.loc[last_two, "item_id:token"] = np.where(
        inter.loc[last_two, "item_id:token"] == popular[0], popular[1], popular[0]
    )
    changed = tmp_path / "changed" / SAMPLE
    changed.mkdir(parents=True)
    inter.drop(columns="order").to_csv(changed / f"{SAMPLE}.inter", sep="\t", index=False)
    shutil.copy(f"{source}/{SAMPLE}.item", changed / f"{SAMPLE}.item")
    fake_users.clear()
    item_table = str(resolve_embedding_table(config))  # the same item texts: no new embedding
    other, other_train, _ = _llmesr_train_split(
        {**settings, "data_path": str(changed.parent), "llm_embedding_file": item_table}
    )
    assert fake_users == prompts  # no prompt names a validation or test item
    other_tokens = other.field2id_token["user_id"]
    assert {
        other_tokens[u]: other_tokens[row].tolist()
        for u, row in enumerate(other_train.similar_users)
    } == neighbours


# -- the methods in RecBole ---------------------------------------------------------------------
def test_llminit_starts_from_the_pca_of_the_llm_table(fast_config):
    config = build_config("SASRec", SAMPLE, config_dict=fast_config, method="llminit")
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    model = LLMInit(config, train._dataset)
    expected = pca_initialisation(torch.as_tensor(dataset.llm_embeddings), 32)
    torch.testing.assert_close(model.backbone.item_embedding.weight.data, expected)
    assert not any("llm" in name for name, _ in model.named_parameters())


@pytest.mark.parametrize("refresh", ["step", "epoch"])
def test_llmesr_loss_parts_are_the_weighted_losses(fast_config, fake_users, refresh):
    settings = {**fast_config, "train_mode": "all_positions", "loss_type": "BCE"}
    settings.update(llmesr_distill_weight=0.3, llmesr_item_reg_weight=0.2)
    settings["llmesr_teacher_refresh"] = refresh
    config = build_config("SASRec", SAMPLE, config_dict=settings, method="llmesr")
    train, _, _ = data_preparation(config, create_dataset(config))
    model = LLMESR(config, train._dataset).eval()  # no dropout: the parts are deterministic
    batch = next(iter(train))
    torch.manual_seed(1)
    l_rec, l_distill, l_reg = model.calculate_loss(batch)

    users = batch[model.USER_ID]
    student = model(batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN])
    neighbours = train._dataset.similar_users[users.numpy()]
    teachers = []
    for row in neighbours:
        seqs = model.user_sequences[torch.as_tensor(row)]
        lens = model.user_lengths[torch.as_tensor(row)]
        teachers.append(model(seqs, lens).mean(dim=0))
    expected = ((student - torch.stack(teachers)) ** 2).mean()
    assert float(l_distill) == pytest.approx(0.3 * float(expected), rel=1e-4)
    items = torch.unique(batch[model.ITEM_SEQ])
    items = items[items != 0]
    e_llm = model.views.adapter(model.views.llm_table[items])
    e_id = model.views.id_embedding(items)
    assert float(l_reg) == pytest.approx(0.2 * float(soft_contrastive_loss(e_llm, e_id)), rel=1e-4)
    assert math.isfinite(float(l_rec)) and float(l_rec) > 0
    # scores are the sum of the two views' scores
    scores = model.item_scores(batch)
    d = model.views.embedding_dim
    by_view = (
        student[:, :d] @ model.views.id_embedding.weight.T
        + student[:, d:] @ (model.views.adapter(model.views.llm_table)).T
    )
    torch.testing.assert_close(scores, by_view, rtol=1e-4, atol=1e-4)


def test_epoch_teachers_hold_still_within_an_epoch(fast_config, fake_users):
    settings = {**fast_config, "train_mode": "all_positions", "loss_type": "BCE"}
    settings["llmesr_teacher_refresh"] = "epoch"
    config = build_config("SASRec", SAMPLE, config_dict=settings, method="llmesr")
    train, _, _ = data_preparation(config, create_dataset(config))
    model = LLMESR(config, train._dataset)
    model.set_epoch(0)
    assert model.training  # the refresh leaves the model as it found it
    users = next(iter(train))[model.USER_ID]
    with torch.no_grad():
        everyone = model.eval()(model.user_sequences, model.user_lengths)
        model.train()
    neighbours = torch.as_tensor(train._dataset.similar_users)[users]
    expected = everyone[neighbours].mean(dim=1)
    torch.testing.assert_close(model.teacher(users), expected, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        model.views.id_embedding.weight.add_(0.5)
    torch.testing.assert_close(model.teacher(users), expected, rtol=1e-4, atol=1e-5)
    model.set_epoch(1)
    assert not torch.allclose(model.teacher(users), expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("method", ["llminit", "llmesr"])
def test_reloaded_checkpoint_reproduces_the_runs_test_result(fast_config, method):
    settings = {**fast_config, "train_mode": "all_positions", "loss_type": "BCE"}
    settings["user_embedding_max_length"] = 32
    result = run_recbole_faerec("SASRec", SAMPLE, config_dict=settings, method=method)
    assert result["text_prior"]["weight"] == 12.0
    config, model, _, train, _, test = load_data_and_model(result["model_file"])
    assert config["method"] == method and type(model).__name__ == config["model"]
    trainer = FAERecTrainer(config, model)
    trainer.eval_collector.data_collect(train)
    reloaded = trainer.evaluate(test, load_best_model=False)
    assert same_metrics(dict(reloaded), dict(result["test_result"]))


# -- the official code's input files (benchmarks/llmesr_official.py) -----------------------------
def _official_harness():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "llmesr_official.py"
    spec = importlib.util.spec_from_file_location("llmesr_official", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_official_codes_files_hold_the_plugins_splits_tables_and_neighbours(
    fast_config, fake_users, sample_data_path, tmp_path, monkeypatch
):
    harness = _official_harness()
    monkeypatch.setattr(harness, "build_config", _with(harness.build_config, fast_config))
    data = harness.export(SAMPLE, str(sample_data_path), tmp_path, smoke=False)
    handled = tmp_path / "data" / harness.OFFICIAL_NAME / "handled"

    inter = _inter_frame(sample_data_path / SAMPLE / f"{SAMPLE}.inter")
    inter = inter.sort_values(["user_id:token", "order"], kind="stable")
    config = build_config("SASRec", SAMPLE, config_dict=fast_config, method="llmesr")
    dataset = create_dataset(config)
    items = dataset.field2id_token["item_id"]
    rows = [line.split() for line in (handled / "inter.txt").read_text().splitlines()]
    exported: dict[int, list[str]] = {}
    for user, item in rows:
        exported.setdefault(int(user), []).append(items[int(item)])
    sequences = sorted(inter.groupby("user_id:token")["item_id:token"].agg(list).tolist())
    assert sorted(exported.values()) == sequences  # every user's items, oldest first
    assert data["users"] == len(sequences) == len(exported)
    for row, seen in enumerate(data["earlier"][True]):  # test: all but the test item removed
        assert {items[i] for i in seen} == set(exported[row + 1][:-1])

    with open(handled / "itm_emb_np.pkl", "rb") as file:
        llm = pickle.load(file)
    np.testing.assert_allclose(llm, np.asarray(dataset.llm_embeddings, dtype=np.float32)[1:])
    with open(handled / "pca64_itm_emb_np.pkl", "rb") as file:
        pca = pickle.load(file)
    assert pca.shape == (dataset.item_num - 1, harness.HIDDEN_SIZE)
    with open(handled / "sim_user_100.pkl", "rb") as file:
        similar = pickle.load(file)
    assert similar.shape == (len(sequences), 10)
    assert all(row not in neighbours for row, neighbours in enumerate(similar.tolist()))


def _with(build, settings: dict):
    """``build_config`` with ``settings`` under the harness's own keys."""

    def wrapped(backbone, dataset, config_dict=None, method=None):
        return build(backbone, dataset, config_dict={**settings, **config_dict}, method=method)

    return wrapped


class _StopperStandIn:
    """The official ``EarlyStoppingNew``: stop after ``patience`` epochs without a better score."""

    def __init__(self, patience: int) -> None:
        self.patience, self.best_score, self.best_epoch = patience, None, 0
        self.counter, self.early_stop, self.calls = 0, False, 0

    def __call__(self, score, epoch, model, optimizer, scheduler) -> None:
        self.calls += 1
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_epoch, self.counter = score, epoch, 0
        else:
            self.counter += 1
            self.early_stop = self.counter >= self.patience


class _OfficialStandIn:
    """The parts of the official ``Trainer`` the harness's epoch loop uses, with random training
    (torch, numpy and python draws) and a validation score that rises and falls."""

    fail_at: int | None = None
    budget = 12

    def __init__(self, record: dict) -> None:
        torch.manual_seed(0)
        np.random.seed(0)
        random.seed(0)
        self.record = record
        self.args = SimpleNamespace(num_train_epochs=self.budget)
        self.device = torch.device("cpu")
        self.logger = logging.getLogger("official-stand-in")
        self.watch_metric = "NDCG@10"
        self.model = torch.nn.Linear(3, 1)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.3)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=1, gamma=0.9)
        self.stopper = _StopperStandIn(patience=3)

    def _train_one_epoch(self, epoch: int) -> None:
        if epoch == self.fail_at:
            raise KeyboardInterrupt
        inputs = torch.randn(8, 3) + float(np.random.rand()) + random.random()
        loss = (self.model(inputs) - 1).pow(2).mean()
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.scheduler.step()

    def eval(self, epoch: int = 0, test: bool = False) -> dict:
        score = {"NDCG@10": -abs(float(self.model.weight.sum()) - 0.5)}
        if test:
            self.record["test"].append(score)
        else:
            self.record["valid"].append({"epoch": epoch, **score})
        return score


def test_the_official_loop_killed_mid_run_goes_on_to_the_same_validation_and_test(tmp_path):
    harness = _official_harness()

    def run(resume_file, fail_at=None):
        record = {"valid": [], "test": []}
        trainer = harness.resumable_trainer(_OfficialStandIn, resume_file, ["--seed=1"], record)
        trainer.fail_at = fail_at
        official = trainer(record)
        try:
            return official.train(), record, official.stopper.calls
        except KeyboardInterrupt:
            return None, record, official.stopper.calls

    whole, whole_record, whole_calls = run(tmp_path / "whole.pth")
    assert 3 < len(whole_record["valid"]) < 12  # it stopped early, after some epochs
    resume_file = tmp_path / "killed.pth"
    killed, _, _ = run(resume_file, fail_at=3)
    assert killed is None
    resumed, resumed_record, resumed_calls = run(resume_file)
    assert resumed == whole
    assert resumed_record == whole_record  # the three epochs before the kill included
    assert resumed_calls == whole_calls - 3  # the epochs before the kill are not trained again

    record = {"valid": [], "test": []}
    other = harness.resumable_trainer(_OfficialStandIn, resume_file, ["--seed=2"], record)
    with pytest.raises(SystemExit, match="--out: .* other arguments"):
        other(record).train()


def test_a_lower_epoch_budget_tests_the_best_epoch_so_far_without_training(tmp_path):
    harness = _official_harness()
    resume_file = tmp_path / "resume.pth"
    record = {"valid": [], "test": []}
    arguments = ["--seed=1", "--num_train_epochs=12"]
    killed = harness.resumable_trainer(_OfficialStandIn, resume_file, arguments, record)
    killed.fail_at = 3
    with pytest.raises(KeyboardInterrupt):
        killed(record).train()
    trained = list(record["valid"])
    assert [r["epoch"] for r in trained] == [0, 1, 2]

    record = {"valid": [], "test": []}
    arguments = ["--seed=1", "--num_train_epochs=3"]
    now = harness.resumable_trainer(_OfficialStandIn, resume_file, arguments, record)
    now.budget = 3
    official = now(record)
    test, best_epoch = official.train()
    assert official.stopper.calls == 0  # no epoch trained
    assert record["valid"] == trained
    assert best_epoch == max(trained, key=lambda r: r["NDCG@10"])["epoch"]
    assert record["test"] == [test]
