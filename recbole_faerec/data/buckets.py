"""Batches of similar sequence length, so that cutting each batch to its longest sequence pays.

RecBole pads every sequence to ``MAX_ITEM_LIST_LENGTH`` (50 in the paper's protocol) while most
users of an Amazon 5-core dataset have fewer than ten items; a backbone that can cut a batch to
its longest sequence (:data:`~recbole_faerec.supported_backbones.TRIMMABLE`) only saves work when
the batch holds no long sequence. These loaders order the rows so that each batch does:

* training (:class:`LengthBucketTrainDataLoader`): every epoch, the rows are shuffled, split in
  pools of ``length_bucket_pool`` batches, sorted by length inside each pool and cut into batches
  whose order is shuffled again. Each batch is still a random draw among rows of similar length;
* evaluation (:func:`length_order`): rows sorted by length once. Every metric of the plugin is a
  mean or a union over rows, so the order of the rows changes no result.

Both work through an index map applied in ``collate_fn``: RecBole's loader keeps handing out
consecutive slices ``0..n-1``, which the map turns into the bucketed rows.
"""

from __future__ import annotations

import numpy as np
import torch
from recbole.data.dataloader import TrainDataLoader


def length_order(lengths: np.ndarray) -> np.ndarray:
    """Row order by increasing sequence length (stable)."""
    return np.argsort(lengths, kind="stable")


def bucketed_order(
    lengths: np.ndarray, batch_size: int, pool_batches: int, rng: np.random.Generator
) -> np.ndarray:
    """A random row order whose consecutive ``batch_size`` slices hold rows of similar length.

    Rows are shuffled, sorted by length within pools of ``pool_batches`` batches and cut into
    batches; the full batches come in random order and the one short batch, if any, last.
    """
    rows = rng.permutation(len(lengths))
    pool = batch_size * pool_batches
    full, short = [], []
    for start in range(0, len(rows), pool):
        chunk = rows[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        for first in range(0, len(chunk), batch_size):
            batch = chunk[first : first + batch_size]
            (full if len(batch) == batch_size else short).append(batch)
    batches = [full[i] for i in rng.permutation(len(full))] + short
    return np.concatenate(batches) if batches else rows


class LengthBucketTrainDataLoader(TrainDataLoader):
    """RecBole's training loader with batches of similar sequence length (see module doc)."""

    def __init__(self, config, dataset, sampler, shuffle: bool = True) -> None:
        self.pool_batches = int(config["length_bucket_pool"])
        self.lengths = dataset.inter_feat[dataset.item_list_length_field].numpy()
        self.order = np.arange(len(self.lengths))
        super().__init__(config, dataset, sampler, shuffle=False)

    def __iter__(self):
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))
        rng = np.random.default_rng(seed)
        self.order = bucketed_order(self.lengths, self.step, self.pool_batches, rng)
        return super().__iter__()

    def collate_fn(self, index):
        return super().collate_fn(self.order[np.asarray(index)])
