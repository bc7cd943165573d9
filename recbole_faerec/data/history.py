"""``repeatable: False`` for sequential models: the user's earlier items out of the full ranking.

RecBole's full-sort evaluation of a *sequential* model keeps every item in the ranking, items the
user already interacted with included, and RecBole's ``Config`` refuses ``repeatable: False`` for
sequential models. The paper's protocol (and the S3-Rec / FMLP-Rec line it follows) removes them:
on data where nobody consumes an item twice (Amazon 5-core), an earlier item can never be the
answer. This module gives ``repeatable`` its RecBole meaning for sequential models:

* at validation, every item of the user before the validation target is excluded from the
  ranking; at test, every item before the test target, the validation item included;
* the *whole* history counts, not only the input sequence truncated to ``MAX_ITEM_LIST_LENGTH``;
* the exclusion happens inside RecBole's evaluation path: the full-sort loader
  (:class:`~recbole_faerec.data.loaders.SequentialFullSortEvalDataLoader`) returns the
  ``history_index`` that :meth:`recbole.trainer.Trainer._full_sort_batch_eval` sets to ``-inf``,
  so every metric and every top-K list sees the same ranking.

An evaluated row's history is the union of the items of the user in the earlier splits
(:class:`UserHistory`, attached to the split by :class:`~recbole_faerec.data.dataset.FAERecDataset`)
and of the row's own input sequence; duplicates are harmless (an item is set to ``-inf`` twice).
"""

from __future__ import annotations

import numpy as np
import torch
from recbole.utils import ModelType

#: Interaction field of the evaluation rows: True where the target is one of the user's earlier
#: items (read by the repeat-aware metrics of :mod:`recbole_faerec.metrics`).
REPEAT_FIELD = "target_is_repeat"


class UserHistory:
    """Items per user in compressed sparse rows: ``items[indptr[u]:indptr[u + 1]]``."""

    def __init__(self, users: np.ndarray, items: np.ndarray, n_users: int) -> None:
        users = np.asarray(users, dtype=np.int64)
        order = np.argsort(users, kind="stable")
        counts = np.bincount(users, minlength=n_users)
        self.n_users = n_users
        self.indptr = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)]))
        self.items = torch.from_numpy(np.asarray(items, dtype=np.int64)[order])
        self._users = users[order]

    def union(self, other: UserHistory) -> UserHistory:
        """The items of both histories per user."""
        users = np.concatenate([self._users, other._users])
        items = np.concatenate([self.items.numpy(), other.items.numpy()])
        return UserHistory(users, items, max(self.n_users, other.n_users))

    def user_items(self, user: int) -> list[int]:
        """The items of one user (for inspection and tests)."""
        return self.items[self.indptr[user] : self.indptr[user + 1]].tolist()

    def batch_index(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rows, items)`` of every history item of a batch of users (row = batch position)."""
        users = users.long().cpu()
        starts = self.indptr[users]
        lengths = self.indptr[users + 1] - starts
        rows = torch.repeat_interleave(torch.arange(users.numel()), lengths)
        first = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
        offsets = torch.arange(rows.numel()) - first
        return rows, self.items[torch.repeat_interleave(starts, lengths) + offsets]


def excludes_history(config) -> bool:
    """Whether evaluation removes the user's earlier items (sequential, ``repeatable: False``)."""
    return config["MODEL_TYPE"] == ModelType.SEQUENTIAL and not config["repeatable"]


def history_index(
    history: UserHistory, users: torch.Tensor, item_seq: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows, items)`` to exclude for a batch: the users' items in the earlier splits and the
    items of each row's own input sequence."""
    rows, items = history.batch_index(users)
    seq_rows, seq_cols = torch.nonzero(item_seq, as_tuple=True)
    return torch.cat([rows, seq_rows]), torch.cat([items, item_seq[seq_rows, seq_cols]])


def repeat_flags(rows: torch.Tensor, items: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Whether each row's target is among its history items ``(rows, items)`` (a repeat)."""
    flags = torch.zeros(targets.numel(), dtype=torch.bool)
    flags[rows[items == targets[rows]]] = True
    return flags
