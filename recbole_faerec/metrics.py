"""Tail-aware ranking metrics for RecBole's evaluator, computed in the same full-sort pass.

Call :func:`register_metrics` once, **before** building ``recbole.config.Config``, so the
metric names below validate in ``metrics:`` and ``recbole.evaluator.Evaluator`` computes them;
install :class:`TailAwareCollector` as the trainer's ``eval_collector`` (:func:`install_collector`,
in the trainer's ``__init__``, i.e. before ``fit``) so the evaluator receives the target item of
every evaluated row.

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

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from recbole.evaluator import register as recbole_register
from recbole.evaluator.base_metric import AbstractMetric
from recbole.evaluator.collector import Collector, DataStruct
from recbole.utils import EvaluatorType

from recbole_faerec.data.history import REPEAT_FIELD

DEFAULT_HEAD_RATIO = 0.2
DEFAULT_POPULARITY_BINS = (1, 5, 10, 20, 50)
TARGET_KEY = "rec.target"
REPEAT_KEY = "rec.repeat"
_PER_EVALUATION_KEYS = ("rec.topk", "rec.meanrank", "rec.score", "rec.items", "data.label")
_EPS = 1e-9


def _config_value(config: Any, key: str, default: Any) -> Any:
    """``config[key]``, or ``default`` when the key is absent or ``None``."""
    value = config[key] if key in config else None
    return default if value is None else value


def item_popularity(count_items: Mapping[Any, int] | Sequence[int], num_items: int) -> np.ndarray:
    """Training popularity of every item id ``0 .. num_items - 1`` (padding id 0 gets 0)."""
    popularity = np.zeros(num_items, dtype=np.int64)
    if isinstance(count_items, Mapping):
        for item, count in count_items.items():
            item = int(item)
            if 0 < item < num_items:
                popularity[item] = int(count)
    else:
        counts = np.asarray(count_items, dtype=np.int64).reshape(-1)[:num_items]
        popularity[: len(counts)] = counts
        popularity[0] = 0
    return popularity


def head_mask(popularity: np.ndarray, head_ratio: float) -> np.ndarray:
    """Boolean mask over item ids marking head items (see the module docstring)."""
    if not 0.0 <= head_ratio <= 1.0:
        raise ValueError(f"head_ratio must lie in [0, 1], got {head_ratio}")
    items = np.arange(1, len(popularity))
    pop = popularity[1:]
    n_head = min(math.floor(head_ratio * len(items) + _EPS), int((pop > 0).sum()))
    order = np.lexsort((items, -pop))
    mask = np.zeros(len(popularity), dtype=bool)
    mask[items[order[:n_head]]] = True
    return mask


def check_popularity_bins(bins: Sequence[int]) -> list[int]:
    """Validate lower bounds: a non-empty, strictly increasing list of non-negative integers."""
    bounds = [int(b) for b in bins]
    if not bounds or bounds[0] < 0 or any(a >= b for a, b in zip(bounds, bounds[1:], strict=False)):
        raise ValueError(f"popularity_bins must be strictly increasing and >= 0, got {list(bins)}")
    return bounds


def group_labels(bins: Sequence[int]) -> list[str]:
    """Labels of the popularity bins, e.g. ``['1-4', '5-9', '10-19', '20-49', '50+']``."""
    bounds = check_popularity_bins(bins)
    labels = []
    for low, nxt in zip(bounds, bounds[1:], strict=False):
        labels.append(str(low) if nxt - 1 == low else f"{low}-{nxt - 1}")
    labels.append(f"{bounds[-1]}+")
    return labels


def group_index(popularity: np.ndarray, bins: Sequence[int]) -> np.ndarray:
    """Bin index of every popularity value; -1 below the first lower bound."""
    bounds = np.asarray(check_popularity_bins(bins), dtype=np.int64)
    return np.searchsorted(bounds, popularity, side="right") - 1


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


def _row_targets(n_rows: int, positive_u: torch.Tensor, positive_i: torch.Tensor) -> torch.Tensor:
    """The single positive item of each evaluated row."""
    rows = positive_u.long().reshape(-1)
    counts = torch.bincount(rows, minlength=n_rows)
    if len(counts) != n_rows or bool((counts != 1).any()):
        raise ValueError(
            "tail-aware metrics need exactly one target item per evaluated row "
            "(leave-one-out sequential evaluation)"
        )
    targets = torch.empty(n_rows, dtype=torch.long, device=rows.device)
    targets[rows] = positive_i.long().reshape(-1).to(rows.device)
    return targets


class TailAwareCollector(Collector):
    """RecBole ``Collector`` that also records each evaluated row's target item.

    * Records ``rec.target`` (shape ``(n_rows,)``) from the ``positive_u``/``positive_i`` the
      trainer passes to :meth:`eval_batch_collect`, when a registered metric needs it.
    * When ``max(topk)`` exceeds the number of score columns, pads the scores with ``-inf``
      columns so the top-K lists can be built (padded ids are ``>= num_items`` and never count).
    * :meth:`get_data_struct` moves only tensors to the CPU (RecBole 1.2.1 calls ``.cpu()`` on the
      ``int``/``Counter`` values of ``data.num_items``/``data.count_items`` and fails) and resets
      the per-evaluation entries, ``rec.target`` included.
    """

    def eval_batch_collect(
        self,
        scores_tensor: torch.Tensor,
        interaction: Any,
        positive_u: torch.Tensor,
        positive_i: torch.Tensor,
    ) -> None:
        """Collect RecBole's entries for one batch, plus ``rec.target``."""
        needs_topk = self.register.need("rec.items") or self.register.need("rec.topk")
        missing = max(self.topk) - scores_tensor.shape[-1]
        if needs_topk and scores_tensor.dim() == 2 and missing > 0:
            pad = scores_tensor.new_full((scores_tensor.shape[0], missing), -math.inf)
            scores_tensor = torch.cat((scores_tensor, pad), dim=1)
        super().eval_batch_collect(scores_tensor, interaction, positive_u, positive_i)
        if self.register.need(TARGET_KEY):
            targets = _row_targets(scores_tensor.shape[0], positive_u, positive_i)
            self.data_struct.update_tensor(TARGET_KEY, targets)
        if (
            self.register.need(REPEAT_KEY)
            and interaction is not None
            and REPEAT_FIELD in interaction
        ):
            self.data_struct.update_tensor(REPEAT_KEY, interaction[REPEAT_FIELD].reshape(-1))

    def get_data_struct(self) -> DataStruct:
        """Return the collected resources (tensors on the CPU) and reset per-evaluation ones."""
        returned = DataStruct()
        for key, value in self.data_struct._data_dict.items():
            returned.set(key, value.cpu() if isinstance(value, torch.Tensor) else value)
        for key in (*_PER_EVALUATION_KEYS, TARGET_KEY, REPEAT_KEY):
            if key in self.data_struct:
                del self.data_struct[key]
        return returned


def install_collector(trainer: Any) -> None:
    """Replace a RecBole trainer's ``eval_collector`` by a :class:`TailAwareCollector`.

    Call it right after ``Trainer.__init__`` and before ``fit`` (``fit`` hands the training data
    to the collector) or a standalone ``evaluate``.
    """
    trainer.eval_collector = TailAwareCollector(trainer.config)
