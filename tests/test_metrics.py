"""Tail-aware metrics against hand-computed values, through RecBole's Collector and Evaluator."""

from __future__ import annotations

import math
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from recbole.config import Config, configurator
from recbole.evaluator import Collector, Evaluator
from recbole.evaluator import evaluator as recbole_evaluator
from recbole.evaluator import register as recbole_register
from recbole.utils import calculate_valid_score

from recbole_faerec.collector import TailAwareCollector, install_collector
from recbole_faerec.metrics import TailHit, register_metrics
from recbole_faerec.popularity import group_labels, head_mask, item_popularity

ALL_METRICS = [
    "Hit",
    "NDCG",
    "HeadHit",
    "HeadNDCG",
    "TailHit",
    "TailNDCG",
    "GroupHit",
    "GroupNDCG",
    "Coverage",
    "TailCoverage",
]

# Items 1..6 (0 is padding). Item 6 is never seen in training (test only).
NUM_ITEMS = 7
TRAIN_COUNTS = Counter({1: 10, 2: 6, 3: 6, 4: 2, 5: 1})
# Ranked lists of four evaluated rows and their (single) target items.
RANKINGS = [[1, 2, 3, 4, 5, 6], [3, 1, 2, 5, 4, 6], [4, 5, 1, 2, 3, 6], [2, 3, 5, 1, 6, 4]]
TARGETS = [2, 6, 4, 1]  # ranks 2, 6, 1, 4
TOPK = [1, 2, 5, 10]  # 10 > the 6 items: the lists are padded


def ndcg(rank: int) -> float:
    return 1.0 / math.log2(rank + 1)


@pytest.fixture()
def make_config(monkeypatch, tmp_path):
    register_metrics()
    monkeypatch.setattr(sys, "argv", ["x"])

    def build(**overrides) -> Config:
        config_dict = {
            "metrics": ALL_METRICS,
            "topk": TOPK,
            "valid_metric": "Hit@10",
            "metric_decimal_place": 12,
            "train_neg_sample_args": None,
            "loss_type": "CE",
            "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
            "checkpoint_dir": str(tmp_path),
            "device": "cpu",
        }
        config_dict.update(overrides)
        return Config(model="SASRec", dataset="ml-100k", config_dict=config_dict)

    return build


def scores_for(rankings: list[list[int]]) -> torch.Tensor:
    scores = torch.full((len(rankings), NUM_ITEMS), -math.inf)
    for row, ranking in enumerate(rankings):
        for position, item in enumerate(ranking):
            scores[row, item] = float(len(ranking) - position)
    return scores


def collect(config: Config, rankings=RANKINGS, targets=TARGETS, counts=TRAIN_COUNTS):
    collector = TailAwareCollector(config)
    dataset = SimpleNamespace(num=lambda field: NUM_ITEMS, item_counter=counts)
    collector.data_collect(SimpleNamespace(dataset=dataset))
    rows = torch.arange(len(targets))
    collector.eval_batch_collect(scores_for(rankings), None, rows, torch.tensor(targets))
    return collector.get_data_struct()


def evaluate(config: Config, **kwargs) -> dict[str, float]:
    return dict(Evaluator(config).evaluate(collect(config, **kwargs)))


def assert_values(result: dict[str, float], expected: dict[str, float]) -> None:
    for key, value in expected.items():
        if math.isnan(value):
            assert math.isnan(result[key]), key
        else:
            assert result[key] == pytest.approx(value, abs=1e-12), key


def test_popularity_and_head_tail_from_training_counts_only():
    pop = item_popularity(TRAIN_COUNTS, NUM_ITEMS)
    assert pop.tolist() == [0, 10, 6, 6, 2, 1, 0]
    assert item_popularity([99, 10, 6, 6, 2, 1], NUM_ITEMS).tolist() == pop.tolist()
    heads = {ratio: np.flatnonzero(head_mask(pop, ratio)).tolist() for ratio in (0, 0.2, 0.34)}
    # floor(0.34 * 6) = 2: items 2 and 3 tie at 6, the smaller id wins.
    assert heads == {0: [], 0.2: [1], 0.34: [1, 2]}
    # head_ratio 1.0: item 6 (popularity 0, test only) stays tail.
    assert np.flatnonzero(head_mask(pop, 1.0)).tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError):
        head_mask(pop, 1.5)


def test_group_labels():
    assert group_labels([1, 5, 10, 20, 50]) == ["1-4", "5-9", "10-19", "20-49", "50+"]
    assert group_labels([0, 1, 3]) == ["0", "1-2", "3+"]
    for bad in ([], [5, 5], [3, 1], [-1, 2]):
        with pytest.raises(ValueError):
            group_labels(bad)


def test_hand_computed_values(make_config):
    result = evaluate(make_config())
    tail_ndcg_10 = (ndcg(2) + ndcg(6) + ndcg(1)) / 3
    expected = {
        # head = {1} (floor(0.2 * 6) = 1): row 3 only, rank 4.
        "headhit@1": 0.0,
        "headhit@2": 0.0,
        "headhit@5": 1.0,
        "headhit@10": 1.0,
        "headndcg@2": 0.0,
        "headndcg@5": ndcg(4),
        "headndcg@10": ndcg(4),
        # tail rows 0, 1, 2 with ranks 2, 6, 1.
        "tailhit@1": 1 / 3,
        "tailhit@2": 2 / 3,
        "tailhit@5": 2 / 3,
        "tailhit@10": 1.0,
        "tailndcg@1": 1 / 3,
        "tailndcg@2": (ndcg(2) + 1) / 3,
        "tailndcg@5": (ndcg(2) + 1) / 3,
        "tailndcg@10": tail_ndcg_10,
        # Overall, computed by RecBole's own Hit/NDCG.
        "hit@1": 0.25,
        "hit@5": 0.75,
        "hit@10": 1.0,
        "ndcg@10": (ndcg(2) + ndcg(6) + ndcg(1) + ndcg(4)) / 4,
        # Popularity bins: item 4 (pop 2) in 1-4, item 2 (pop 6) in 5-9, item 1 (pop 10) in
        # 10-19; item 6 (pop 0) in none; 20-49 and 50+ are empty.
        "grouphit[1-4]@1": 1.0,
        "grouphit[5-9]@1": 0.0,
        "grouphit[5-9]@2": 1.0,
        "grouphit[10-19]@2": 0.0,
        "grouphit[10-19]@5": 1.0,
        "groupndcg[5-9]@2": ndcg(2),
        "groupndcg[10-19]@10": ndcg(4),
        "grouphit[20-49]@10": math.nan,
        "groupndcg[50+]@5": math.nan,
        # Coverage over the 6 items; the K=10 lists hold padding and padded ids, never counted.
        "coverage@1": 4 / 6,
        "coverage@2": 5 / 6,
        "coverage@5": 1.0,
        "coverage@10": 1.0,
        # Tail items {2, 3, 4, 5, 6}.
        "tailcoverage@1": 3 / 5,
        "tailcoverage@2": 4 / 5,
        "tailcoverage@5": 1.0,
        "tailcoverage@10": 1.0,
    }
    assert_values(result, expected)
    groups = ["1-4", "5-9", "10-19", "20-49", "50+"]
    assert [k for k in result if k.startswith("grouphit")] == [
        f"grouphit[{g}]@{k}" for g in groups for k in TOPK
    ]
    n_head, n_tail = 1, 3
    for k in TOPK:
        mix = (n_head * result[f"headhit@{k}"] + n_tail * result[f"tailhit@{k}"]) / 4
        assert mix == pytest.approx(result[f"hit@{k}"])


def test_single_group_matches_recbole(make_config):
    all_tail = evaluate(make_config(head_ratio=0.0, popularity_bins=[0]))
    all_seen = Counter({1: 10, 2: 6, 3: 6, 4: 2, 5: 1, 6: 3})
    all_head = evaluate(make_config(head_ratio=1.0), counts=all_seen)
    for k in TOPK:
        for kind in ("hit", "ndcg"):
            overall = all_tail[f"{kind}@{k}"]
            assert all_tail[f"tail{kind}@{k}"] == pytest.approx(overall)
            assert all_tail[f"group{kind}[0+]@{k}"] == pytest.approx(overall)
            assert math.isnan(all_tail[f"head{kind}@{k}"])
            assert all_head[f"head{kind}@{k}"] == pytest.approx(all_head[f"{kind}@{k}"])
            assert math.isnan(all_head[f"tail{kind}@{k}"])
        assert math.isnan(all_head[f"tailcoverage@{k}"])


def test_unseen_item_is_tail_even_with_head_ratio_one(make_config):
    result = evaluate(make_config(head_ratio=1.0))
    # head = {1..5}: rows 0, 2, 3 (ranks 2, 1, 4); tail = {6}: row 1 (rank 6).
    assert_values(
        result,
        {"headhit@2": 2 / 3, "headhit@5": 1.0, "tailhit@5": 0.0, "tailhit@10": 1.0},
    )


def test_collector_resets_targets_and_rejects_multiple_positives(make_config):
    config = make_config()
    collector = TailAwareCollector(config)
    dataset = SimpleNamespace(num=lambda field: NUM_ITEMS, item_counter=TRAIN_COUNTS)
    collector.data_collect(SimpleNamespace(dataset=dataset))
    evaluator = Evaluator(config)
    collector.eval_batch_collect(scores_for(RANKINGS), None, torch.arange(4), torch.tensor(TARGETS))
    first = collector.get_data_struct()
    assert first.get("rec.target").tolist() == TARGETS
    collector.eval_batch_collect(scores_for(RANKINGS[:1]), None, torch.arange(1), torch.tensor([1]))
    second = collector.get_data_struct()
    assert second.get("rec.target").tolist() == [1]
    assert second.get("data.num_items") == NUM_ITEMS
    assert evaluator.evaluate(second)["headhit@1"] == 1.0
    with pytest.raises(ValueError, match="exactly one target"):
        collector.eval_batch_collect(
            scores_for(RANKINGS[:2]), None, torch.tensor([0, 0]), torch.tensor([1, 2])
        )


def test_topk_entries_equal_recboles_with_several_positives_per_row(make_config):
    """One topk call and hits from the positives give RecBole's own entries, to the last bit,
    with rows of several positives, a repeated positive and rows without any; the entries the
    collector leaves to RecBole (``rec.meanrank``, for GAUC) are still collected."""
    config = make_config(metrics=["Hit", "NDCG", "MRR", "ItemCoverage", "GAUC"], topk=[1, 3, 5])
    scores = torch.randn(9, NUM_ITEMS, generator=torch.Generator().manual_seed(0))
    batches = [  # (score rows, positive_u numbered within the batch, positive_i)
        (scores[:5], [0, 0, 1, 2, 2, 2, 4], [1, 3, 6, 2, 2, 5, 4]),
        (scores[5:], [0, 2, 3, 3], [1, 6, 3, 1]),
    ]
    dataset = SimpleNamespace(num=lambda field: NUM_ITEMS, item_counter=TRAIN_COUNTS)
    structs = []
    for collector in (TailAwareCollector(config), Collector(config)):
        collector.data_collect(SimpleNamespace(dataset=dataset))
        for batch_scores, rows, items in batches:
            collector.eval_batch_collect(
                batch_scores, None, torch.tensor(rows), torch.tensor(items)
            )
        structs.append(collector.data_struct)
    ours, recbole = structs
    for key in ("rec.items", "rec.topk", "rec.meanrank"):
        assert ours[key].dtype == recbole[key].dtype, key
        assert torch.equal(ours[key], recbole[key]), key
    assert ours["rec.topk"][:, -1].tolist() == [2, 1, 2, 0, 1, 1, 0, 1, 2]


def test_plain_collector_error_is_explicit(make_config):
    config = make_config(metrics=["TailHit"], valid_metric="TailHit@10")
    struct = collect(config)
    del struct["rec.target"]
    with pytest.raises(KeyError, match="TailAwareCollector"):
        TailHit(config).calculate_metric(struct)


def test_registration_is_shared_and_idempotent(make_config):
    register_metrics()
    register_metrics()
    assert configurator.metric_types is recbole_register.metric_types
    assert configurator.smaller_metrics is recbole_register.smaller_metrics
    assert recbole_evaluator.metrics_dict is recbole_register.metrics_dict
    names = {m.lower() for m in ALL_METRICS}
    assert names <= set(recbole_register.metrics_dict)
    assert not names & set(recbole_register.smaller_metrics)
    config = make_config(valid_metric="GroupHit[1-4]@10")
    assert config["valid_metric_bigger"] is True
    result = evaluate(config)
    assert calculate_valid_score(result, config["valid_metric"].lower()) == 1.0


@pytest.mark.usefixtures("one_torch_thread")
def test_end_to_end_ml100k(make_config, monkeypatch, tmp_path):
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    monkeypatch.chdir(tmp_path)
    config = make_config(
        topk=[5, 10, 20],
        valid_metric="TailHit@10",
        epochs=1,
        show_progress=False,
        hidden_size=16,
        inner_size=32,
        MAX_ITEM_LIST_LENGTH=20,
        metric_decimal_place=12,
    )
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = SASRec(config, train_data._dataset)
    trainer = Trainer(config, model)
    install_collector(trainer)
    assert isinstance(trainer.eval_collector, TailAwareCollector)
    trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    result = trainer.evaluate(test_data, load_best_model=True)

    for key in ("headhit@10", "tailhit@10", "headndcg@20", "tailndcg@5", "tailcoverage@10"):
        assert 0.0 <= result[key] <= 1.0, key
    iid = config["ITEM_ID_FIELD"]
    counts = train_data.dataset.item_counter
    is_head = head_mask(item_popularity(counts, dataset.item_num), 0.2)
    targets = test_data._dataset.inter_feat[iid].numpy()
    n_head = int(is_head[targets].sum())
    n_tail = len(targets) - n_head
    assert 0 < n_head < len(targets)
    for k in (5, 10, 20):
        mix = (n_head * result[f"headhit@{k}"] + n_tail * result[f"tailhit@{k}"]) / len(targets)
        assert mix == pytest.approx(result[f"hit@{k}"], abs=1e-9)


def test_properties_yaml_builds_config(monkeypatch):
    register_metrics()
    monkeypatch.setattr(sys, "argv", ["x"])
    yaml_file = Path(__file__).resolve().parents[1] / "properties" / "metrics.yaml"
    config = Config(
        model="SASRec",
        dataset="ml-100k",
        config_file_list=[str(yaml_file)],
        config_dict={"train_neg_sample_args": None},
    )
    assert config["head_ratio"] == 0.2
    assert config["popularity_bins"] == [1, 5, 10, 20, 50]
    assert config["topk"] == [5, 10, 20]
    repeat_metrics = {"repeathit", "repeatndcg", "newhit", "newndcg"}
    assert {m.lower() for m in config["metrics"]} == {
        m.lower() for m in ALL_METRICS
    } | repeat_metrics
    assert config["valid_metric"].lower() == "ndcg@10"


def test_repeat_and_new_targets_hand_computed(make_config):
    """Rows 0 and 2 (ranks 2 and 1) repeat an earlier item; rows 1 and 3 (ranks 6, 4) are new."""
    from recbole.data.interaction import Interaction

    from recbole_faerec.data.history import REPEAT_FIELD

    config = make_config(metrics=["Hit", "RepeatHit", "RepeatNDCG", "NewHit", "NewNDCG"])
    collector = TailAwareCollector(config)
    dataset = SimpleNamespace(num=lambda field: NUM_ITEMS, item_counter=TRAIN_COUNTS)
    collector.data_collect(SimpleNamespace(dataset=dataset))
    flags = Interaction({REPEAT_FIELD: torch.tensor([True, False, True, False])})
    rows = torch.arange(len(TARGETS))
    collector.eval_batch_collect(scores_for(RANKINGS), flags, rows, torch.tensor(TARGETS))
    result = dict(Evaluator(config).evaluate(collector.get_data_struct()))
    assert_values(
        result,
        {
            "repeathit@1": 0.5,
            "repeathit@2": 1.0,
            "repeatndcg@2": (ndcg(2) + 1.0) / 2,
            "newhit@1": 0.0,
            "newhit@5": 0.5,
            "newndcg@10": (ndcg(6) + ndcg(4)) / 2,
            # Hit@5 over all rows = the row-weighted mean of the two groups.
            "hit@5": 0.75,
        },
    )


def test_repeat_metrics_name_the_missing_loader(make_config):
    config = make_config(metrics=["RepeatHit"])
    with pytest.raises(KeyError, match="plugin's evaluation loader"):
        evaluate(config)
