"""Tail-aware ranking metrics for RecBole's evaluator, computed in the same full-sort pass.

Call :func:`register_metrics` once, **before** building ``recbole.config.Config``, so the
metric names below validate in ``metrics:`` and ``recbole.evaluator.Evaluator`` computes them;
install :class:`~recbole_faerec.collector.TailAwareCollector` as the trainer's ``eval_collector``
(:func:`~recbole_faerec.collector.install_collector`, in the trainer's ``__init__``, i.e. before
``fit``) so the evaluator receives the target item of every evaluated row. The popularity helpers
live in :mod:`recbole_faerec.popularity`.

Definitions (all ids are RecBole's internal item ids; id 0 is padding and never an item):

* **Popularity** ``pop(i)``: the number of training interactions of item ``i``, read from
  ``data.count_items`` (RecBole's ``train_data.dataset.item_counter``). Items absent from the
  counter (never seen in training, e.g. only seen in valid/test) have popularity 0. The item
  universe is ``1 .. data.num_items - 1``.
* **Head / tail**: items are ranked by popularity, descending; ties are broken by the smaller
  internal id first (deterministic). The first ``floor(head_ratio * n_items)`` items of that order
  are head, except that items with popularity 0 are never head; every other item is tail.
  ``head_ratio`` (config key, default 0.2) must lie in [0, 1].
* **Target group**: leave-one-out evaluation has exactly one target item per evaluated row
  (user); a row counts in the group (head, tail, popularity bin) of its target item.
* **Hit@K / NDCG@K** (as RecBole's with one positive): with ``r`` the 1-based rank of the target
  in the row's top-K list, ``Hit@K = 1[r <= K]`` and ``NDCG@K = 1 / log2(r + 1)`` if ``r <= K``
  else 0. A K larger than the number of items simply means every ranked item is in the list.
* **HeadHit@K, HeadNDCG@K, TailHit@K, TailNDCG@K**: the mean of Hit@K / NDCG@K over the rows
  whose target is head (tail). Hence ``Hit@K = (n_head * HeadHit@K + n_tail * TailHit@K) /
  (n_head + n_tail)`` for the row counts ``n_head``, ``n_tail``.
* **GroupHit@K, GroupNDCG@K**: the same mean per popularity bin. ``popularity_bins`` (config key,
  default ``[1, 5, 10, 20, 50]``) lists strictly increasing lower bounds; bin ``j`` holds items with
  ``bins[j] <= pop < bins[j + 1]`` and the last bin is open-ended. Items below the first bound
  (with the default: never seen in training) belong to no bin.
* **Coverage@K**: distinct items in all top-K lists, padding excluded, divided by the number of
  items (``data.num_items - 1``; RecBole's ``ItemCoverage`` divides by ``num_items`` instead).
* **TailCoverage@K**: distinct tail items in all top-K lists divided by the number of tail items.
* **RepeatHit@K, RepeatNDCG@K, NewHit@K, NewNDCG@K**: the mean of Hit@K / NDCG@K over the rows
  whose target the user already interacted with before (a repeat) or not (a new item), the
  whole history counting. With ``repeatable: False`` a repeat target is out of the ranking, so
  RepeatHit is 0; on data without repeats (Amazon 5-core) the repeat group is empty (``nan``).
  The flags come from the plugin's evaluation loader
  (:class:`~recbole_faerec.data.loaders.SequentialFullSortEvalDataLoader`).

An empty group (no row with a target in it, or no tail item at all for TailCoverage) yields
``nan``: the value is undefined, not zero, exactly like a mean over no users.

Result keys are lower-case, like RecBole's: ``tailhit@10``, ``tailndcg@10``, ``headhit@10``,
``headndcg@10``, ``coverage@10``, ``tailcoverage@10`` and per bin ``grouphit[1-4]@10``,
``groupndcg[50+]@10`` (label ``lo-hi`` with inclusive bounds, ``lo`` for a one-value bin, ``lo+``
for the last bin). Any of them can be a ``valid_metric`` (e.g. ``TailNDCG@10``): the trainer looks
up ``valid_metric.lower()`` and RecBole ranks every one of them as bigger-is-better.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from recbole.evaluator import register as recbole_register
from recbole.evaluator.base_metric import AbstractMetric
from recbole.evaluator.collector import DataStruct
from recbole.utils import EvaluatorType

from recbole_faerec.popularity import (
    DEFAULT_HEAD_RATIO,
    DEFAULT_POPULARITY_BINS,
    check_popularity_bins,
    group_index,
    group_labels,
    head_mask,
    item_popularity,
)

TARGET_KEY = "rec.target"
REPEAT_KEY = "rec.repeat"


def _config_value(config: Any, key: str, default: Any) -> Any:
    """``config[key]``, or ``default`` when the key is absent or ``None``."""
    value = config[key] if key in config else None
    return default if value is None else value


def target_ranks(items: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based rank of each row's target in its top list, ``inf`` when absent."""
    found = items == targets[:, None]
    first = found.argmax(axis=1).astype(np.float64) + 1.0
    return np.where(found.any(axis=1), first, np.inf)


def _gain(ranks: np.ndarray, k: int, kind: str) -> np.ndarray:
    inside = ranks <= k
    if kind == "hit":
        return inside.astype(np.float64)
    return np.where(inside, 1.0 / np.log2(np.where(inside, ranks, 1.0) + 1.0), 0.0)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


class _TailAwareMetric(AbstractMetric):
    """Shared configuration and inputs of the tail-aware metrics."""

    metric_type = EvaluatorType.RANKING
    metric_need = ["rec.items", TARGET_KEY, "data.count_items", "data.num_items"]
    smaller = False
    kind = "hit"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.topk = list(config["topk"])
        self.head_ratio = float(_config_value(config, "head_ratio", DEFAULT_HEAD_RATIO))
        self.popularity_bins = check_popularity_bins(
            _config_value(config, "popularity_bins", DEFAULT_POPULARITY_BINS)
        )

    def _popularity(self, dataobject: DataStruct) -> np.ndarray:
        return item_popularity(dataobject.get("data.count_items"), dataobject.get("data.num_items"))

    def _items(self, dataobject: DataStruct) -> np.ndarray:
        return dataobject.get("rec.items").numpy()

    def _targets(self, dataobject: DataStruct) -> np.ndarray:
        if TARGET_KEY not in dataobject:
            raise KeyError(
                f"'{TARGET_KEY}' was not collected: tail-aware metrics need "
                "recbole_faerec.metrics.TailAwareCollector as the trainer's eval_collector"
            )
        return dataobject.get(TARGET_KEY).numpy().reshape(-1)

    def _round(self, value: float) -> float:
        return round(value, self.decimal_place)

    def _group_means(self, dataobject: DataStruct, in_group: np.ndarray) -> dict[str, float]:
        """Mean Hit or NDCG@K (``kind``) over the rows in ``in_group``, named after the class."""
        ranks = target_ranks(self._items(dataobject), self._targets(dataobject))[in_group]
        name = type(self).__name__.lower()
        return {f"{name}@{k}": self._round(_mean(_gain(ranks, k, self.kind))) for k in self.topk}


class _HeadTailMetric(_TailAwareMetric):
    group = "head"
    kind = "hit"

    def calculate_metric(self, dataobject: DataStruct) -> dict[str, float]:
        """Mean Hit/NDCG@K over rows whose target is in this class's group."""
        popularity = self._popularity(dataobject)
        is_head = head_mask(popularity, self.head_ratio)
        targets = self._targets(dataobject)
        in_group = is_head[targets] if self.group == "head" else ~is_head[targets]
        return self._group_means(dataobject, in_group)


class HeadHit(_HeadTailMetric):
    """Hit@K over users whose target item is a head item."""

    group = "head"
    kind = "hit"


class HeadNDCG(_HeadTailMetric):
    """NDCG@K over users whose target item is a head item."""

    group = "head"
    kind = "ndcg"


class TailHit(_HeadTailMetric):
    """Hit@K over users whose target item is a tail item."""

    group = "tail"
    kind = "hit"


class TailNDCG(_HeadTailMetric):
    """NDCG@K over users whose target item is a tail item."""

    group = "tail"
    kind = "ndcg"


class _GroupMetric(_TailAwareMetric):
    kind = "hit"

    def calculate_metric(self, dataobject: DataStruct) -> dict[str, float]:
        """Mean Hit/NDCG@K per popularity bin of the target item."""
        popularity = self._popularity(dataobject)
        targets = self._targets(dataobject)
        bins = group_index(popularity, self.popularity_bins)[targets]
        ranks = target_ranks(self._items(dataobject), targets)
        name = type(self).__name__.lower()
        result = {}
        for j, label in enumerate(group_labels(self.popularity_bins)):
            group_ranks = ranks[bins == j]
            for k in self.topk:
                value = _mean(_gain(group_ranks, k, self.kind))
                result[f"{name}[{label}]@{k}"] = self._round(value)
        return result


class GroupHit(_GroupMetric):
    """Hit@K per training-popularity bin of the target item."""

    kind = "hit"


class GroupNDCG(_GroupMetric):
    """NDCG@K per training-popularity bin of the target item."""

    kind = "ndcg"


class _RepeatMetric(_TailAwareMetric):
    metric_need = ["rec.items", TARGET_KEY, REPEAT_KEY]
    repeat = True
    kind = "hit"

    def calculate_metric(self, dataobject: DataStruct) -> dict[str, float]:
        """Mean Hit/NDCG@K over rows whose target is a repeat (or a new item)."""
        if REPEAT_KEY not in dataobject:
            raise KeyError(
                f"'{REPEAT_KEY}' was not collected: repeat-aware metrics need the plugin's "
                "evaluation loader (recbole_faerec.data.dataset.data_preparation) and "
                "recbole_faerec.metrics.TailAwareCollector"
            )
        flags = dataobject.get(REPEAT_KEY).numpy().reshape(-1).astype(bool)
        return self._group_means(dataobject, flags if self.repeat else ~flags)


class RepeatHit(_RepeatMetric):
    """Hit@K over users whose target item they interacted with before."""

    repeat = True
    kind = "hit"


class RepeatNDCG(_RepeatMetric):
    """NDCG@K over users whose target item they interacted with before."""

    repeat = True
    kind = "ndcg"


class NewHit(_RepeatMetric):
    """Hit@K over users whose target item is new to them."""

    repeat = False
    kind = "hit"


class NewNDCG(_RepeatMetric):
    """NDCG@K over users whose target item is new to them."""

    repeat = False
    kind = "ndcg"


def _distinct_recommended(items: np.ndarray, num_items: int) -> np.ndarray:
    valid = items[(items > 0) & (items < num_items)]
    return np.unique(valid)


class Coverage(_TailAwareMetric):
    """Distinct recommended items in all top-K lists over all items (padding excluded)."""

    metric_need = ["rec.items", "data.num_items"]

    def calculate_metric(self, dataobject: DataStruct) -> dict[str, float]:
        """Coverage@K for every K of ``topk``."""
        items = self._items(dataobject)
        num_items = int(dataobject.get("data.num_items"))
        n_real = num_items - 1
        result = {}
        for k in self.topk:
            distinct = _distinct_recommended(items[:, :k], num_items)
            value = len(distinct) / n_real if n_real > 0 else float("nan")
            result[f"coverage@{k}"] = self._round(value)
        return result


class TailCoverage(_TailAwareMetric):
    """Distinct recommended tail items in all top-K lists over all tail items."""

    metric_need = ["rec.items", "data.count_items", "data.num_items"]

    def calculate_metric(self, dataobject: DataStruct) -> dict[str, float]:
        """TailCoverage@K for every K of ``topk``."""
        items = self._items(dataobject)
        num_items = int(dataobject.get("data.num_items"))
        is_tail = ~head_mask(self._popularity(dataobject), self.head_ratio)
        is_tail[0] = False
        n_tail = int(is_tail.sum())
        result = {}
        for k in self.topk:
            distinct = _distinct_recommended(items[:, :k], num_items)
            covered = int(is_tail[distinct].sum())
            value = covered / n_tail if n_tail > 0 else float("nan")
            result[f"tailcoverage@{k}"] = self._round(value)
        return result


TAIL_AWARE_METRICS: tuple[type[AbstractMetric], ...] = (
    HeadHit,
    HeadNDCG,
    TailHit,
    TailNDCG,
    GroupHit,
    GroupNDCG,
    Coverage,
    TailCoverage,
    RepeatHit,
    RepeatNDCG,
    NewHit,
    NewNDCG,
)


def register_metrics() -> None:
    """Add the tail-aware metrics to RecBole's registries (idempotent).

    The registries are shared objects (``recbole.config.configurator`` imported ``metric_types``
    and ``smaller_metrics`` by name, ``recbole.evaluator.evaluator`` imported ``metrics_dict``),
    so they are mutated in place, never rebound. Call before building ``Config``.
    """
    for cls in TAIL_AWARE_METRICS:
        name = cls.__name__.lower()
        existing = recbole_register.metrics_dict.get(name)
        if existing is not None and (existing.__module__, existing.__qualname__) != (
            cls.__module__,
            cls.__qualname__,
        ):
            raise ValueError(f"metric name '{name}' is already registered by {existing!r}")
        recbole_register.metrics_dict[name] = cls
        recbole_register.metric_information[name] = list(cls.metric_need)
        recbole_register.metric_types[name] = cls.metric_type
        if cls.smaller and name not in recbole_register.smaller_metrics:
            recbole_register.smaller_metrics.append(name)
