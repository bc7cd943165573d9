"""``repeatable: False`` for sequential models, on a tiny hand-built dataset and a fixed scorer.

Items a..f; the scorer always ranks ``a > c > d > b > e > f``. User u1 has ``a b c d`` (train
``a b``, valid ``c``, test ``d``), user u2 has ``e f b c`` (train ``e f``, valid ``b``, test ``c``).
``MAX_ITEM_LIST_LENGTH: 2`` truncates u1's test input to ``b c``: ``a`` is excluded all the same,
because the whole history counts.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from recbole_faerec.config import build_config
from recbole_faerec.data.dataset import create_dataset, data_preparation
from recbole_faerec.data.history import REPEAT_FIELD, UserHistory
from recbole_faerec.data.loaders import SequentialFullSortEvalDataLoader
from recbole_faerec.trainer import FAERecTrainer

SEQUENCES = {"u1": "abcd", "u2": "efbc"}
RANKING = "acdbef"


def write_tiny_dataset(root, sequences: dict[str, str]) -> None:
    folder = root / "tiny"
    folder.mkdir()
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user, items in sequences.items():
        lines += [f"{user}\t{item}\t{t}" for t, item in enumerate(items)]
    (folder / "tiny.inter").write_text("\n".join(lines) + "\n")


class FixedScorer(nn.Module):
    """Scores every item by its place in ``RANKING`` (first = highest)."""

    def __init__(self, dataset) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        scores = torch.full((dataset.item_num,), -1e9)
        for place, token in enumerate(RANKING):
            scores[dataset.token2id(dataset.iid_field, token)] = float(len(RANKING) - place)
        self.register_buffer("scores", scores)

    def full_sort_predict(self, interaction):
        return self.scores.expand(len(interaction), -1).clone()


def evaluate(tmp_path, monkeypatch, repeatable: bool, sequences=SEQUENCES):
    monkeypatch.chdir(tmp_path)
    write_tiny_dataset(tmp_path, sequences)
    config = build_config(
        "SASRec",
        "tiny",
        config_dict={
            "data_path": str(tmp_path),
            "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
            "repeatable": repeatable,
            "MAX_ITEM_LIST_LENGTH": 2,
            "metrics": ["Hit", "NDCG"],
            "topk": [1, 3],
            "valid_metric": "NDCG@3",
            "hidden_size": 8,
            "inner_size": 8,
            "state": "ERROR",
            "show_progress": False,
            "text_prior": False,  # no item texts here
        },
        base=True,
    )
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    trainer = FAERecTrainer(config, FixedScorer(dataset))
    trainer.eval_collector.data_collect(train)
    results = {
        name: trainer.evaluate(split, load_best_model=False)
        for name, split in (("valid", valid), ("test", test))
    }
    return dataset, valid, test, results


def ndcg(rank: int) -> float:
    return 1.0 / math.log2(rank + 1)


def test_repeatable_false_skips_the_users_earlier_items(tmp_path, monkeypatch):
    _, valid, test, results = evaluate(tmp_path, monkeypatch, repeatable=False)
    assert isinstance(valid, SequentialFullSortEvalDataLoader)
    # valid: u1 target c, a excluded -> c first; u2 target b, e f excluded -> a c d b: rank 4.
    assert results["valid"]["hit@1"] == pytest.approx(0.5)
    assert results["valid"]["ndcg@3"] == pytest.approx((1.0 + 0.0) / 2, abs=1e-4)
    # test: u1 target d, a b c excluded (a only in the whole history) -> d first;
    # u2 target c, e f b excluded (b is the validation item) -> a c: rank 2.
    assert results["test"]["hit@1"] == pytest.approx(0.5)
    assert results["test"]["ndcg@3"] == pytest.approx((1.0 + ndcg(2)) / 2, abs=1e-4)


def test_repeatable_true_keeps_recboles_ranking(tmp_path, monkeypatch):
    _, valid, _, results = evaluate(tmp_path, monkeypatch, repeatable=True)
    assert not valid.excludes_history
    # valid: u1 target c at rank 2, u2 target b at rank 4; test: u1 d rank 3, u2 c rank 2.
    assert results["valid"]["hit@1"] == 0.0
    assert results["valid"]["ndcg@3"] == pytest.approx(ndcg(2) / 2, abs=1e-4)
    assert results["test"]["ndcg@3"] == pytest.approx((ndcg(3) + ndcg(2)) / 2, abs=1e-4)


def test_validation_item_is_excluded_at_test_time_only(tmp_path, monkeypatch):
    dataset, valid, test, _ = evaluate(tmp_path, monkeypatch, repeatable=False)

    def excluded(loader, user: str) -> set[str]:
        batch, (rows, items), _, _ = loader.collate_fn(np.arange(len(loader._dataset)))
        uid = dataset.token2id(dataset.uid_field, user)
        row = int((batch[dataset.uid_field] == uid).nonzero())
        return set(dataset.id2token(dataset.iid_field, items[rows == row].numpy()))

    assert excluded(valid, "u1") == {"a", "b"}
    assert excluded(test, "u1") == {"a", "b", "c"}
    assert excluded(valid, "u2") == {"e", "f"}
    assert excluded(test, "u2") == {"e", "f", "b"}


def test_rows_whose_target_the_user_had_are_flagged(tmp_path, monkeypatch):
    """u3 ``c e a c``: the test target c repeats the first item, the validation target a not."""
    sequences = {**SEQUENCES, "u3": "ceac"}
    dataset, valid, test, _ = evaluate(tmp_path, monkeypatch, True, sequences)

    def flags(loader) -> dict[str, bool]:
        batch = loader.collate_fn(np.arange(len(loader._dataset)))[0]
        users = dataset.id2token(dataset.uid_field, batch[dataset.uid_field].numpy())
        return dict(zip(users, batch[REPEAT_FIELD].tolist(), strict=True))

    assert flags(valid) == {"u1": False, "u2": False, "u3": False}
    assert flags(test) == {"u1": False, "u2": False, "u3": True}


def test_repeatable_true_leaves_every_score_untouched(tmp_path, monkeypatch):
    dataset, valid, _, _ = evaluate(tmp_path, monkeypatch, repeatable=True)
    trainer = FAERecTrainer(valid.config, FixedScorer(dataset))
    trainer.tot_item_num = dataset.item_num
    batch = next(iter(valid))
    assert batch[1] is None
    _, scores, _, _ = trainer._full_sort_batch_eval(batch)
    expected = FixedScorer(dataset).scores.expand(len(batch[0]), -1).clone()
    expected[:, 0] = -np.inf
    assert torch.equal(scores, expected)


def test_user_history_batch_index():
    history = UserHistory(np.array([2, 0, 2, 1]), np.array([5, 6, 7, 8]), n_users=3)
    assert history.user_items(2) == [5, 7]
    rows, items = history.batch_index(torch.tensor([2, 1, 2]))
    assert rows.tolist() == [0, 0, 1, 2, 2]
    assert items.tolist() == [5, 7, 8, 5, 7]
    both = history.union(UserHistory(np.array([1]), np.array([9]), n_users=3))
    assert both.user_items(1) == [8, 9]
