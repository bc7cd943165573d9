"""Content prior at full-sort scoring: how close each item's text is to the user's recent items.

FAERec's scores come from the fused item table. A tail item's row is learned from few
interactions, so a tail target that reads like the user's recent items can still rank low. The
content prior adds to each user's scores a term that needs no training::

    score(u, i) + weight * std_u * cos(c_u, c_i)

``c_i`` is item ``i``'s LLM text embedding, centred, written in its principal components, each
component divided by ``sqrt(variance + shrinkage * mean variance)`` (a whitening, shrunk towards
the plain PCA so that near-empty directions are not blown up), and normalised. Sentence encoders
spend most of their variance on a few directions that every text shares; whitening lets the
directions that tell two items apart count as much. ``c_u`` is the normalised sum of ``c_j`` over
the items of the user's input sequence; ``std_u`` is the standard deviation of the user's scores
over all items, which makes ``weight`` a number of standard deviations, independent of the
backbone's and the loss's score scale.

With a *text transition* (:mod:`.transition`, fitted on the training sequences by
:meth:`ContentPrior.fit_transition`), ``c_u`` is first moved to where the next item's text is
expected: ``c_u <- normalise(c_u W)``.

It is applied at full-sort evaluation (the paper's protocol); training and sampled evaluation
(``predict``) use the model's own scores. The ``users x width`` by ``width x items`` product of
the cosines costs as much as the backbone's own scoring three times over at the default model's
384 dimensions; with ``step_precision`` in bfloat16 it runs in bfloat16 (about three times faster
on a CPU with ``avx512_bf16``; the term moves by about 1e-2 of the user's score spread).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recbole_faerec.model.fusion import pca_initialisation
from recbole_faerec.model.precision import add_matmul_
from recbole_faerec.model.transition import TrainingPairs, fit_text_transition, sequence_vectors


class ContentPrior(nn.Module):
    """Adds ``weight * std_u * cos(c_u, c_i)`` to full-sort scores (see the module docstring).

    Args:
        llm_table: frozen LLM embeddings, one row per RecBole item id (row 0 is padding).
        weight: standard deviations of the user's scores that a cosine of 1 adds.
        shrinkage: each principal component is divided by ``sqrt(its variance + shrinkage x
            the mean variance)``; > 0. Small values whiten fully, large ones keep the plain
            PCA's proportions.
        dtype: dtype of the cosine product (float32 or bfloat16); the scores stay float32.
    """

    def __init__(
        self,
        llm_table: torch.Tensor,
        weight: float,
        shrinkage: float,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if not shrinkage > 0:
            raise ValueError(f"shrinkage must be > 0, got {shrinkage!r}")
        self.weight = weight
        self.dtype = dtype
        components = min(llm_table.size(1), llm_table.size(0) - 1)
        scores = pca_initialisation(llm_table.float(), components)
        variance = scores[1:].var(dim=0)
        vectors = F.normalize(scores * (variance + shrinkage * variance.mean()).rsqrt(), dim=-1)
        vectors[0] = 0.0
        self.register_buffer("item_vectors", vectors, persistent=False)
        self.register_buffer("transition", None, persistent=False)

    def fit_transition(
        self,
        pairs: TrainingPairs,
        popularity: torch.Tensor,
        epochs: int,
        popularity_weight: float,
        seed: int,
        show_progress: bool = False,
    ) -> None:
        """Fit the text transition on training pairs (:func:`.transition.fit_text_transition`)."""
        self.transition = fit_text_transition(
            self.item_vectors,
            pairs,
            popularity,
            epochs,
            popularity_weight,
            seed,
            self.dtype,
            show_progress,
        )

    def user_vectors(self, item_seq: torch.Tensor) -> torch.Tensor:
        """``c_u``: the normalised sum of the item vectors of each sequence (padding adds
        nothing), through the text transition when one is fitted."""
        users = sequence_vectors(item_seq, self.item_vectors)
        if self.transition is None:
            return users
        return F.normalize(users @ self.transition, dim=-1)

    def similarity(self, item_seq: torch.Tensor) -> torch.Tensor:
        """``cos(c_u, c_i)`` of every user (row) and item (column); 0 for the padding item."""
        return self.user_vectors(item_seq) @ self.item_vectors.T

    def forward(self, scores: torch.Tensor, item_seq: torch.Tensor) -> torch.Tensor:
        """Add the prior to ``scores`` (users x items, column 0 the padding item) in place and
        return them. The user's weight scales ``c_u`` before the product; in float32 it
        accumulates into ``scores``, so no other ``users x items`` tensor is made; in a low
        precision it is added in blocks of users (:func:`.precision.add_matmul_`)."""
        users = self.user_vectors(item_seq) * (self.weight * row_std(scores[:, 1:]))
        return add_matmul_(scores, users, self.item_vectors.T, self.dtype)


def row_std(x: torch.Tensor) -> torch.Tensor:
    """Standard deviation of each row (unbiased), as a column, from the row's mean and norm.

    Two plain reductions instead of ``x.std`` (ten times slower on the CPU for a full-sort score
    matrix). ``E[x^2] - E[x]^2`` loses relative precision when a row's mean is far larger than its
    spread: about 1e-3 of the result at a mean 40 times the standard deviation, ample for a weight.
    """
    n = x.size(1)
    mean = x.mean(dim=1, keepdim=True)
    square = torch.linalg.vector_norm(x, dim=1, keepdim=True).square() / n
    return ((square - mean.square()) * (n / (n - 1))).clamp(min=0).sqrt()
