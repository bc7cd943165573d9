"""Curriculum schedule between the two alignment levels (FAERec, Section 3.3).

The weight of the item-level loss follows a cosine over epochs::

    w(t) = (w_max - w_min) * (1 + cos(2 * pi * t / T)) / 2 + w_min

so training starts item-level heavy (``w = w_max`` at ``t = 0``), moves towards the
feature level until ``t = T / 2`` (``w = w_min``) and comes back at ``t = T``. The alignment
loss is ``L_align = w * L_item + (1 - w) * L_feature``.
"""

from __future__ import annotations

import math


def alignment_weight(epoch: int, w_min: float, w_max: float, period: float) -> float:
    """Weight ``w(t)`` of the item-level alignment loss at ``epoch`` (``period`` is ``T``)."""
    return (w_max - w_min) * (1.0 + math.cos(2.0 * math.pi * epoch / period)) / 2.0 + w_min
