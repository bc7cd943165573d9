"""RecBole's ``data_preparation`` with the plugin's loaders where a run needs them.

* full-sort validation and test of a sequential model on the plugin's dataset use
  :class:`SequentialFullSortEvalDataLoader`: it marks each row whose target the user already had
  (for the repeat-aware metrics), removes the user's earlier items from the ranking when
  ``repeatable: False`` (:mod:`.history`) and orders the rows by length when the backbone cuts
  batches to their longest sequence (:mod:`.buckets`);
* training uses :class:`~.buckets.LengthBucketTrainDataLoader` when the backbone cuts batches and
  ``length_bucket_pool`` is above 0.

Anything else keeps RecBole's own loaders, untouched. The plugin's loaders are built on the very
splits and samplers RecBole's ``data_preparation`` made.
"""

from __future__ import annotations

import numpy as np
from recbole.data import data_preparation as recbole_data_preparation
from recbole.data.dataloader import FullSortEvalDataLoader, TrainDataLoader
from recbole.data.interaction import Interaction
from recbole.utils import ModelType

from recbole_faerec.data.buckets import LengthBucketTrainDataLoader, length_order
from recbole_faerec.data.history import (
    REPEAT_FIELD,
    excludes_history,
    history_index,
    repeat_flags,
)
from recbole_faerec.supported_backbones import TRIMMABLE


class SequentialFullSortEvalDataLoader(FullSortEvalDataLoader):
    """RecBole's full-sort loader for sequential rows of the plugin's dataset: repeat flags, the
    history index of ``repeatable: False`` and, for backbones that cut padding, rows by length."""

    def __init__(self, config, dataset, sampler, shuffle: bool = False) -> None:
        self.history = dataset.eval_history
        self.excludes_history = excludes_history(config)
        self.item_seq_field = dataset.iid_field + config["LIST_SUFFIX"]
        self.order = np.arange(len(dataset))
        if trims_padding(config):
            self.order = length_order(dataset.inter_feat[dataset.item_list_length_field].numpy())
        super().__init__(config, dataset, sampler, shuffle=shuffle)

    def collate_fn(self, index):
        interaction, _, positive_u, positive_i = super().collate_fn(self.order[np.asarray(index)])
        users, item_seq = interaction[self.uid_field], interaction[self.item_seq_field]
        rows, items = history_index(self.history, users, item_seq)
        interaction.update(
            Interaction({REPEAT_FIELD: repeat_flags(rows, items, interaction[self.iid_field])})
        )
        history = (rows, items) if self.excludes_history else None
        return interaction, history, positive_u, positive_i


def _evaluation_loader(config, loader):
    """The plugin's loader for a full-sort sequential evaluation on the plugin's dataset."""
    if type(loader) is not FullSortEvalDataLoader or config["MODEL_TYPE"] != ModelType.SEQUENTIAL:
        return loader
    if getattr(loader._dataset, "eval_history", None) is None:
        if excludes_history(config):
            raise ValueError(
                "repeatable: `repeatable: False` for a sequential model needs the plugin's "
                "dataset (recbole_faerec.data.dataset.FAERecDataset), which records each user's "
                "earlier items; fix: build it with recbole_faerec.data.dataset.create_dataset."
            )
        return loader
    return SequentialFullSortEvalDataLoader(config, loader._dataset, loader._sampler)


def trims_padding(config) -> bool:
    """Whether the run's backbone cuts each batch to its longest sequence."""
    return config["MODEL_TYPE"] == ModelType.SEQUENTIAL and config["backbone"] in TRIMMABLE


def data_preparation(config, dataset) -> tuple:
    """RecBole's ``data_preparation`` with the plugin's loaders where the run needs them."""
    train_data, valid_data, test_data = recbole_data_preparation(config, dataset)
    if type(train_data) is TrainDataLoader and trims_padding(config):
        if (config["length_bucket_pool"] or 0) > 0:
            train_data = LengthBucketTrainDataLoader(
                config, train_data._dataset, train_data._sampler, shuffle=True
            )
    valid_data, test_data = (
        _evaluation_loader(config, loader) for loader in (valid_data, test_data)
    )
    return train_data, valid_data, test_data
