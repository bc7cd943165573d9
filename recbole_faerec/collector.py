"""RecBole's evaluation ``Collector`` extended with each row's target item and repeat flag,
which the tail-aware metrics of :mod:`recbole_faerec.metrics` need, and with a cheaper top-K
collection."""

from __future__ import annotations

import math
from typing import Any

import torch
from recbole.evaluator.collector import Collector, DataStruct

from recbole_faerec.data.history import REPEAT_FIELD
from recbole_faerec.metrics import REPEAT_KEY, TARGET_KEY

_PER_EVALUATION_KEYS = ("rec.topk", "rec.meanrank", "rec.score", "rec.items", "data.label")


#: The collected entries built from the top-K list, which :class:`TailAwareCollector` builds itself.
_TOPK_KEYS = ("rec.items", "rec.topk")


def topk_hits(
    topk_idx: torch.Tensor, positive_u: torch.Tensor, positive_i: torch.Tensor, n_columns: int
) -> torch.Tensor:
    """RecBole's ``rec.topk`` entry: per row, 1 where the top-K item is one of the row's positive
    items, then the row's number of distinct positives (``n_columns``: the scored items).

    RecBole builds it from a dense ``rows x items`` positive matrix; this costs ``positives x K``.
    """
    pairs = torch.unique(positive_u.long() * n_columns + positive_i.long())
    rows, items = pairs // n_columns, pairs % n_columns
    hits = torch.zeros(topk_idx.shape, dtype=torch.long, device=topk_idx.device)
    hits.index_add_(0, rows, (topk_idx[rows] == items.unsqueeze(1)).long())
    counts = torch.bincount(rows, minlength=topk_idx.size(0)).unsqueeze(1)
    return torch.cat((hits, counts), dim=1)


class _RegisterWithout:
    """A view of a collector's ``Register`` that does not need ``keys``."""

    def __init__(self, register: Any, keys: tuple[str, ...]) -> None:
        self.register, self.keys = register, keys

    def need(self, key: str) -> bool:
        return key not in self.keys and self.register.need(key)


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
    * Builds ``rec.items`` and ``rec.topk`` from one ``topk`` call (RecBole calls it once for
      each), and ``rec.topk`` from the positives (:func:`topk_hits`) instead of a dense
      ``rows x items`` matrix; the entries are RecBole's, equal to the last bit.
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
        needs_items, needs_topk = (self.register.need(key) for key in _TOPK_KEYS)
        if needs_items or needs_topk:
            missing = max(self.topk) - scores_tensor.shape[-1]
            if scores_tensor.dim() == 2 and missing > 0:
                pad = scores_tensor.new_full((scores_tensor.shape[0], missing), -math.inf)
                scores_tensor = torch.cat((scores_tensor, pad), dim=1)
            _, topk_idx = torch.topk(scores_tensor, max(self.topk), dim=-1)
            if needs_items:
                self.data_struct.update_tensor("rec.items", topk_idx)
            if needs_topk:
                hits = topk_hits(topk_idx, positive_u, positive_i, scores_tensor.size(1))
                self.data_struct.update_tensor("rec.topk", hits)
        register, self.register = self.register, _RegisterWithout(self.register, _TOPK_KEYS)
        try:
            super().eval_batch_collect(scores_tensor, interaction, positive_u, positive_i)
        finally:
            self.register = register
        if self.register.need(TARGET_KEY):
            targets = _row_targets(scores_tensor.shape[0], positive_u, positive_i)
            self.data_struct.update_tensor(TARGET_KEY, targets)
        if (
            self.register.need(REPEAT_KEY)
            and interaction is not None
            and REPEAT_FIELD in interaction
        ):
            self.data_struct.update_tensor(REPEAT_KEY, interaction[REPEAT_FIELD].reshape(-1))

    #: Under a process group, how many of this process's evaluated rows are real (see
    #: :meth:`expect_rows`); None in a single process.
    own_rows: int | None = None

    def expect_rows(self, total_rows: int, rank: int, world_size: int) -> None:
        """Before a distributed evaluation: the split has ``total_rows`` rows, dealt out as
        RecBole's ``DistributedSampler`` does (row ``i`` to rank ``i % world_size``, the last ranks
        padded with repeats of the first rows, which come last in their stream)."""
        self.own_rows = len(range(rank, total_rows, world_size))

    def get_data_struct(self) -> DataStruct:
        """Return the collected resources (tensors on the CPU) and reset per-evaluation ones.

        Under a process group the per-row resources of every process are gathered (padding rows
        dropped), so that every metric is computed once over all rows, as in one process.
        """
        returned = DataStruct()
        for key, value in self.data_struct._data_dict.items():
            value = value.cpu() if isinstance(value, torch.Tensor) else value
            if self.own_rows is not None and key in (*_PER_EVALUATION_KEYS, TARGET_KEY, REPEAT_KEY):
                value = _gather_rows(value[: self.own_rows])
            returned.set(key, value)
        for key in (*_PER_EVALUATION_KEYS, TARGET_KEY, REPEAT_KEY):
            if key in self.data_struct:
                del self.data_struct[key]
        return returned


def _gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """The rows of every process of the group, concatenated in rank order."""
    parts: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(parts, rows)
    return torch.cat(parts, dim=0)


def install_collector(trainer: Any) -> None:
    """Replace a RecBole trainer's ``eval_collector`` by a :class:`TailAwareCollector`.

    Call it right after ``Trainer.__init__`` and before ``fit`` (``fit`` hands the training data
    to the collector) or a standalone ``evaluate``.
    """
    trainer.eval_collector = TailAwareCollector(trainer.config)
