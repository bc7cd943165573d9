"""The text prior's transition: which texts follow which in the training sequences.

The text prior (:mod:`.prior`) scores ``cos(c_u, c_i)``: how much item ``i`` reads like the
user's items. A text transition ``W`` moves ``c_u`` to where the *next* item's text is expected,
``c_u <- normalise(c_u W)``. It is fitted once, by the pipeline after training, on the (prefix,
next item) pairs of the training split: a softmax of the logits::

    cos(normalise(c W), c_i) / TEMPERATURE + popularity * log(1 + pop_i)

against the item that follows, plus ``IDENTITY_PULL * ||W - I||^2``, with Adam from ``W = I``
(the plain prior). The popularity term is a logit adjustment: it is added in the fit and left out
at scoring, so ``W`` learns which texts follow which beyond what an item's training popularity
explains (the model's own scores carry popularity already).

The softmax is sampled: each step contrasts its pairs' next items with :data:`CANDIDATES` items
drawn uniformly from the catalog (one draw shared by the step), whose logits are shifted by
``log(items / CANDIDATES)`` so that they stand for the whole catalog; a drawn item that is the
pair's own next item is left out. Catalogs of at most ``CANDIDATES`` items take the full softmax.
One epoch costs about ``6 x pairs x (min(items, CANDIDATES) + width) x width`` multiply-adds,
whatever the catalog's size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from logging import getLogger

import torch
import torch.nn.functional as F
from tqdm import tqdm

from recbole_faerec.model.precision import step_matmul

#: Softmax temperature of the cosines.
TEMPERATURE = 0.1
#: Adam's learning rate at :data:`MAX_PAIRS_PER_STEP` pairs per step; smaller steps take it times
#: ``sqrt(pairs per step / MAX_PAIRS_PER_STEP)``.
LEARNING_RATE = 0.004
#: Weight of ``||W - I||^2``, which keeps ``W`` near the plain prior.
IDENTITY_PULL = 0.001
#: Training pairs per Adam step (on average: batches are whole training rows): the most, and the
#: fewest that smaller training splits go down to so that an epoch keeps :data:`MIN_STEPS` steps.
MAX_PAIRS_PER_STEP = 4096
MIN_PAIRS_PER_STEP = 1024
MIN_STEPS = 32
#: Items each step's softmax is sampled over (the full softmax on smaller catalogs).
CANDIDATES = 512


def sequence_vectors(item_seq: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """The normalised sum of the ``vectors`` of each sequence's items (padding row 0 is zero)."""
    return F.normalize(F.embedding_bag(item_seq, vectors, mode="sum"), dim=-1)


def prefix_sums(rows: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Running sums of ``rows`` within consecutive segments of ``lengths`` rows.

    One cumulative sum over all rows, minus the sum reached before each segment: the work grows
    with the rows, not with the segments' padded length.
    """
    running = rows.cumsum(dim=0)
    before = torch.cat([running.new_zeros(1, rows.size(1)), running])[lengths.cumsum(0) - lengths]
    return running - before.repeat_interleave(lengths, dim=0)


class TrainingPairs:
    """The (prefix, next item) pairs of training rows, made batch by batch.

    Args:
        item_seq: left-aligned item sequences, one training row each (padding 0).
        lengths: the number of items of each sequence.
        targets: the item that follows each sequence.
        every_position: each row also holds the pairs inside its sequence (item ``t + 1`` after
            items ``1..t``), as one row per user does (``train_mode: all_positions``); otherwise
            each row is one pair (RecBole's prefix rows).
    """

    def __init__(
        self,
        item_seq: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor,
        every_position: bool = False,
    ) -> None:
        self.item_seq, self.lengths, self.targets = item_seq, lengths, targets
        self.every_position = every_position

    def __len__(self) -> int:
        return int(self.lengths.sum()) if self.every_position else self.targets.numel()

    def pairs(
        self, vectors: torch.Tensor, rows: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(c, next items)`` of the pairs of ``rows`` (all rows when None): ``c`` is the
        normalised sum of the ``vectors`` of the prefix."""
        seq, lengths, targets = self.item_seq, self.lengths, self.targets
        if rows is not None:
            seq, lengths, targets = seq[rows], lengths[rows], targets[rows]
        if not self.every_position:
            return sequence_vectors(seq, vectors), targets
        following = torch.cat([seq[:, 1:], seq.new_zeros(seq.size(0), 1)], dim=1)
        following.scatter_(1, (lengths - 1).unsqueeze(1), targets.unsqueeze(1))
        valid = torch.arange(seq.size(1), device=seq.device).unsqueeze(0) < lengths.unsqueeze(1)
        return F.normalize(prefix_sums(vectors[seq[valid]], lengths), dim=-1), following[valid]

    def batches(
        self, vectors: torch.Tensor, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled batches of whole rows, about :meth:`pairs_per_step` pairs each."""
        order = torch.randperm(self.targets.numel(), generator=generator)
        for batch in order.split(self._rows_per_batch()):
            yield self.pairs(vectors, batch)

    def steps(self) -> int:
        """Adam steps per epoch."""
        return -(-self.targets.numel() // self._rows_per_batch())

    def pairs_per_step(self) -> int:
        """Pairs per step: an epoch of :data:`MIN_STEPS` steps, within
        ``[MIN_PAIRS_PER_STEP, MAX_PAIRS_PER_STEP]``."""
        return max(MIN_PAIRS_PER_STEP, min(MAX_PAIRS_PER_STEP, len(self) // MIN_STEPS))

    def learning_rate(self) -> float:
        """Adam's learning rate for steps of :meth:`pairs_per_step` pairs."""
        return LEARNING_RATE * math.sqrt(self.pairs_per_step() / MAX_PAIRS_PER_STEP)

    def _rows_per_batch(self) -> int:
        return max(1, round(self.pairs_per_step() * self.targets.numel() / max(len(self), 1)))


def softmax_logits(
    users: torch.Tensor,
    following: torch.Tensor,
    vectors: torch.Tensor,
    adjustment: torch.Tensor,
    candidates: int | None,
    generator: torch.Generator,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, target column)`` of a step's pairs: over every item when ``candidates`` is
    None, else the next item (column 0) and ``candidates`` uniformly drawn items (module
    docstring)."""
    if candidates is None:
        return step_matmul(users, vectors.T, dtype) / TEMPERATURE + adjustment, following
    items = vectors.size(0) - 1
    drawn = torch.randint(1, items + 1, (candidates,), generator=generator)
    drawn = drawn.to(vectors.device)
    shift = math.log(items / candidates)
    sampled = step_matmul(users, vectors[drawn].T, dtype) / TEMPERATURE + adjustment[drawn] + shift
    sampled.masked_fill_(drawn.unsqueeze(0) == following.unsqueeze(1), float("-inf"))
    positive = (users * vectors[following]).sum(dim=-1, keepdim=True) / TEMPERATURE
    positive = positive + adjustment[following].unsqueeze(1)
    target = torch.zeros_like(following)
    return torch.cat([positive, sampled], dim=1), target


def fit_text_transition(
    vectors: torch.Tensor,
    pairs: TrainingPairs,
    popularity: torch.Tensor,
    epochs: int,
    popularity_weight: float,
    seed: int,
    dtype: torch.dtype = torch.float32,
    show_progress: bool = False,
) -> torch.Tensor:
    """Fit ``W`` (module docstring) and return it (``width x width``, float32).

    Args:
        vectors: unit item vectors, one row per item id; row 0 (padding) is never a target.
        pairs: the training pairs.
        popularity: training popularity of every item id.
        epochs: passes over the pairs; 0 returns the identity.
        popularity_weight: the logit adjustment's weight on ``log(1 + popularity)``.
        seed: seeds the order of the pairs (the fit does not touch the global generator).
        dtype: dtype of the step's products, the transition's and the cosines' (float32 or
            bfloat16); ``W`` and its gradient stay float32.
        show_progress: a progress bar over the steps.
    """
    start = time.perf_counter()
    width = vectors.size(1)
    identity = torch.eye(width, device=vectors.device)
    transition = identity.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([transition], lr=pairs.learning_rate())
    adjustment = popularity_weight * torch.log1p(popularity.float())
    adjustment[0] = float("-inf")  # padding
    generator = torch.Generator().manual_seed(seed)
    candidates = CANDIDATES if vectors.size(0) - 1 > CANDIDATES else None
    steps = tqdm(
        total=epochs * pairs.steps(),
        desc="text transition",
        unit="step",
        disable=not show_progress,
    )
    losses = []
    with steps, torch.enable_grad():
        for _ in range(epochs):
            total = 0.0
            for prefixes, following in pairs.batches(vectors, generator):
                users = F.normalize(step_matmul(prefixes, transition, dtype), dim=-1)
                logits, target = softmax_logits(
                    users, following, vectors, adjustment, candidates, generator, dtype
                )
                loss = F.cross_entropy(logits, target)
                pull = IDENTITY_PULL * (transition - identity).square().sum()
                optimizer.zero_grad()
                (loss + pull).backward()
                optimizer.step()
                total += loss.item() * following.numel()
                steps.update()
            losses.append(total / max(len(pairs), 1))
    getLogger().info(
        f"Text prior: transition fitted on {len(pairs)} training pairs, {epochs} epochs, "
        f"{'a full' if candidates is None else f'a {candidates}-item sampled'} softmax, "
        f"in {time.perf_counter() - start:.1f} s; softmax loss per epoch "
        + ", ".join(f"{x:.3f}" for x in losses)
    )
    return transition.detach()
