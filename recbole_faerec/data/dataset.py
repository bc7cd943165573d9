"""The plugin's RecBole dataset: bundled data, training popularity and the LLM table.

:class:`FAERecDataset` is RecBole's :class:`~recbole.data.dataset.SequentialDataset` with three
additions, all computed once when the dataset is built:

* a bundled dataset (``amazon-beauty``, ``amazon-beauty-sample``) missing from ``data_path`` is
  written there first;
* ``train_item_popularity``: how often each item occurs among the *training* interactions
  (the training split of leave-one-out, i.e. every interaction but each user's last two); the
  training split's ``item_counter`` reports these counts, so RecBole's evaluator sees them as
  ``data.count_items``;
* ``llm_embeddings`` (the LLM-enhanced methods and runs with the text prior): the frozen LLM
  table, one row per internal item id, aligned through the item tokens;
* ``similar_users`` on the training split of an LLM-ESR run: every user's most similar users by
  the LLM embeddings of their training items (:mod:`.similar_users`);
* ``eval_history`` on the validation and test splits: each user's items in the earlier splits,
  which evaluation removes from the ranking with ``repeatable: False`` (:mod:`.history`).

With ``train_mode: all_positions`` the training split keeps one row per user, the longest
training prefix (the last ``MAX_ITEM_LIST_LENGTH`` items before the target): the model then takes
the loss at every position of it. Validation and test stay RecBole's leave-one-out rows.
"""

from __future__ import annotations

from collections import Counter
from logging import getLogger

import numpy as np
from recbole.data.dataset import SequentialDataset

from recbole_faerec.data.bundled import materialize_bundled_dataset
from recbole_faerec.data.history import UserHistory
from recbole_faerec.data.loaders import data_preparation
from recbole_faerec.data.similar_users import similar_users
from recbole_faerec.embeddings import load_embedding_table, resolve_embedding_table

MODELS_WITH_LLM_TABLE = ("FAERec", "LLMInit", "LLMESR")
TRAIN_MODES = ("prefix", "all_positions")


class FAERecDataset(SequentialDataset):
    """RecBole sequential dataset with training popularity and (when a model needs it) the LLM
    table."""

    def __init__(self, config) -> None:
        self.train_item_popularity: np.ndarray | None = None
        self._counts_training_popularity = False
        self.llm_embeddings: np.ndarray | None = None
        self.eval_history: UserHistory | None = None
        self.similar_users: np.ndarray | None = None
        if materialize_bundled_dataset(config["dataset"], config["data_path"]):
            getLogger().info(f"Wrote bundled dataset {config['dataset']} to {config['data_path']}")
        super().__init__(config)
        if config["model"] in MODELS_WITH_LLM_TABLE or config["text_prior"]:
            path = resolve_embedding_table(config, show_progress=config["show_progress"])
            tokens = self.field2id_token[self.iid_field]
            self.llm_embeddings = load_embedding_table(path, tokens)
            getLogger().info(f"LLM item table {self.llm_embeddings.shape} from {path}")

    def split_interactions(self) -> tuple[np.ndarray, np.ndarray]:
        """``(users, items)`` of the interactions of this (augmented) split.

        Each augmented row's target is one interaction; the first interaction of a user, which is
        no row's target, is the one-item sequence of the row with length 1.
        """
        users = self.inter_feat[self.uid_field].numpy()
        targets = self.inter_feat[self.iid_field].numpy()
        lengths = self.inter_feat[self.item_list_length_field].numpy()
        sequences = self.inter_feat[self.iid_field + self.config["LIST_SUFFIX"]].numpy()
        firsts = lengths == 1
        return (
            np.concatenate([users, users[firsts]]),
            np.concatenate([targets, sequences[firsts, 0]]),
        )

    def user_history(self) -> UserHistory:
        """The items of every user in this split."""
        return UserHistory(*self.split_interactions(), n_users=self.user_num)

    def longest_prefixes(self) -> FAERecDataset:
        """One row per user: the row with the longest (latest) item sequence."""
        users = self.inter_feat[self.uid_field].numpy()
        order = np.lexsort(
            (
                self.inter_feat[self.time_field].numpy(),
                self.inter_feat[self.item_list_length_field].numpy(),
                users,
            )
        )
        sorted_users = users[order]
        last = np.append(sorted_users[1:] != sorted_users[:-1], True)
        return self.copy(self.inter_feat[order[last]])

    def build(self) -> list[FAERecDataset]:
        train_mode = self.config["train_mode"] or "prefix"
        if train_mode not in TRAIN_MODES:
            raise ValueError(f"train_mode: {train_mode!r} is not one of {', '.join(TRAIN_MODES)}.")
        datasets = super().build()
        users, items = datasets[0].split_interactions()
        popularity = np.bincount(items, minlength=self.item_num)
        earlier = UserHistory(users, items, n_users=self.user_num)
        for split in datasets[1:]:
            split.eval_history = earlier
            earlier = earlier.union(split.user_history())
        neighbours = None
        if self.config["model"] == "LLMESR":
            neighbours = similar_users(self.config, datasets[0])
        if train_mode == "all_positions":
            datasets[0] = datasets[0].longest_prefixes()
        datasets[0].similar_users = neighbours
        for split in datasets:
            split.train_item_popularity = popularity
        datasets[0]._counts_training_popularity = True
        return datasets

    @property
    def item_counter(self) -> Counter:
        """Item counts; on the training split, the exact training popularity."""
        if self._counts_training_popularity:
            return Counter({i: int(c) for i, c in enumerate(self.train_item_popularity) if c})
        return super().item_counter


def create_dataset(config) -> FAERecDataset:
    """Build the plugin's dataset for ``config`` (RecBole's ``create_dataset`` counterpart)."""
    try:
        dataset = FAERecDataset(config)
    except ValueError as exc:
        if "Some feat is empty" not in str(exc):
            raise
        keys = ("user_inter_num_interval", "item_inter_num_interval", "val_interval")
        given = {key: config[key] for key in keys if config[key] is not None}
        raise ValueError(
            f"dataset '{config['dataset']}' ({config['data_path']}) has no interactions left after "
            f"RecBole's filtering {given or ''}; fix: widen or remove those intervals (e.g. "
            "--user_inter_num_interval='[0,inf)') or check the .inter file."
        ) from None
    getLogger().info(dataset)
    return dataset


__all__ = ["FAERecDataset", "create_dataset", "data_preparation"]
