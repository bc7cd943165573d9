"""The text prior: a term added to any model's full-sort scores (beyond the paper).

A sequential model's scores come from its item table. A tail item's row is learned from few
interactions, so a tail target whose text follows from the user's recent items can still rank
low. The text prior adds to each user's scores::

    score(u, i) + weight * std_u * cos(c_u W, c_i)

``c_i`` is item ``i``'s LLM text embedding, centred, written in its top principal components,
each component divided by ``sqrt(variance + shrinkage * mean variance)`` (a whitening, shrunk
towards the plain PCA so that near-empty directions are not blown up), and normalised. Sentence
encoders spend most of their variance on a few directions that every text shares; whitening lets
the directions that tell two items apart count as much. ``c_u`` is the normalised sum of ``c_j``
over the items of the user's input sequence and ``W`` the text transition (:mod:`.transition`),
which moves it to where the next item's text is expected (then normalised again). ``std_u`` is
the standard deviation of the user's scores over all items, which makes ``weight`` a number of
standard deviations, independent of the model's and the loss's score scale.

The prior belongs to no model: :class:`TextPrior` holds only what scoring needs (the item vectors,
``W``, the weight and the precision of its product, all saved with the checkpoint: ``step_precision:
auto`` resolves to bfloat16 on one machine and float32 on another, and a loaded prior scores in the
precision of the run that saved it). It is fitted by the pipeline after training
(:mod:`.fit`); a freshly built prior has weight 0 and leaves the scores unchanged.
"""

from __future__ import annotations

from logging import getLogger

import torch
import torch.nn.functional as F
from torch import nn

from recbole_faerec.model import precision
from recbole_faerec.model.fusion import pca_initialisation
from recbole_faerec.model.precision import add_matmul_
from recbole_faerec.text_prior.transition import sequence_vectors


def prior_width(num_items: int, llm_dim: int, max_width: int) -> int:
    """Principal components the item vectors keep: at most ``max_width``, the LLM width and the
    number of items (``num_items`` counts the padding id)."""
    return max(1, min(llm_dim, num_items - 1, max_width))


def whitened_text_vectors(llm_table: torch.Tensor, width: int, shrinkage: float) -> torch.Tensor:
    """``c_i`` of every item id (module docstring); row 0 (padding) is zero."""
    if not shrinkage > 0:
        raise ValueError(f"text_prior_shrinkage: {shrinkage!r} is invalid; expected a number > 0.")
    scores = pca_initialisation(llm_table.float(), width)
    variance = scores[1:].var(dim=0)
    vectors = F.normalize(scores * (variance + shrinkage * variance.mean()).rsqrt(), dim=-1)
    vectors[0] = 0.0
    return vectors


class TextPrior(nn.Module):
    """Adds ``weight * std_u * cos(c_u W, c_i)`` to full-sort scores (see the module docstring).

    Args:
        num_items: item ids, padding (0) included.
        width: width of the item vectors (:func:`prior_width`).
        dtype: dtype of the cosine product (float32 or bfloat16); the scores stay float32. It is
            a buffer (``bfloat16_product``), so a loaded prior takes the saved run's precision,
            whatever ``step_precision`` resolves to where it is loaded
            (:meth:`_load_from_state_dict`).
    """

    def __init__(self, num_items: int, width: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"TextPrior: dtype {dtype} is not float32 or bfloat16")
        self.register_buffer("item_vectors", torch.zeros(num_items, width))
        self.register_buffer("transition", torch.eye(width))
        self.register_buffer("weight", torch.zeros(()))
        self.register_buffer("bfloat16_product", torch.tensor(dtype == torch.bfloat16))

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the cosine product: bfloat16 or float32."""
        return torch.bfloat16 if bool(self.bfloat16_product) else torch.float32

    @property
    def active(self) -> bool:
        """Whether the prior changes scores (a weight above 0)."""
        return bool(self.weight > 0)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Load as :class:`~torch.nn.Module` does, taking the saved precision. A checkpoint saved
        before the precision was keeps this prior's; a saved bfloat16 that this device cannot
        compute falls back to float32, and says so in one line."""
        key = prefix + "bfloat16_product"
        if key not in state_dict:
            state_dict[key] = self.bfloat16_product.clone()
        built = self.dtype
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        device = self.item_vectors.device
        if self.dtype == torch.bfloat16 and not precision.computes_bfloat16(device):
            self.bfloat16_product.fill_(False)
            getLogger().warning(
                f"Text prior: the checkpoint scores in bfloat16, which {device} cannot compute; "
                "it scores in float32 here, so its figures may differ slightly from the run's."
            )
        elif self.dtype != built:
            getLogger().info(
                f"Text prior: scores in {str(self.dtype).removeprefix('torch.')}, as the run that "
                f"saved it did (step_precision gives {str(built).removeprefix('torch.')} here)."
            )

    def user_vectors(self, item_seq: torch.Tensor) -> torch.Tensor:
        """``c_u W``, normalised: the normalised sum of the item vectors of each sequence (padding
        adds nothing) through the text transition."""
        users = sequence_vectors(item_seq, self.item_vectors)
        return F.normalize(users @ self.transition, dim=-1)

    def similarity(self, item_seq: torch.Tensor) -> torch.Tensor:
        """``cos(c_u W, c_i)`` of every user (row) and item (column); 0 for the padding item."""
        return self.user_vectors(item_seq) @ self.item_vectors.T

    def forward(self, scores: torch.Tensor, item_seq: torch.Tensor) -> torch.Tensor:
        """Add the prior to ``scores`` (users x items, column 0 the padding item) in place and
        return them. The user's weight scales ``c_u`` before the product; in float32 it
        accumulates into ``scores``, so no other ``users x items`` tensor is made; in a low
        precision it is added in blocks of users (:func:`.precision.add_matmul_`)."""
        if not self.active:
            return scores
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
