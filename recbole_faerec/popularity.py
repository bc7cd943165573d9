"""Training popularity of items: counts, the head/tail split and popularity bins.

The definitions (ties, items never seen in training, bin labels) are those of
:mod:`recbole_faerec.metrics`, whose tail-aware metrics and the report use these helpers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DEFAULT_HEAD_RATIO = 0.2

DEFAULT_POPULARITY_BINS = (1, 5, 10, 20, 50)

_EPS = 1e-9


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
