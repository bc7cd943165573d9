"""Dual-level alignment between ID and projected LLM item embeddings (FAERec, Section 3.2).

Both losses take one row per *distinct* item of the batch: ``id_emb[i]`` and ``llm_emb[i]`` are
the ID embedding and the projected LLM embedding of the same item.

* Item level, :func:`item_alignment_loss`: InfoNCE from each item's ID embedding to its own LLM
  embedding against the LLM embeddings of the other items, with cosine similarity and
  temperature ``tau``::

      L_item = -1/N * sum_i log( exp(cos(z_i, l_i) / tau) / sum_j exp(cos(z_i, l_j) / tau) )

  Because the rows are distinct items, an item that occurs twice in a batch is never its own
  negative. With ``max_negatives`` every item stays an anchor but is contrasted with one random
  subset of at most that many other items of the batch (shared by all anchors), which turns the
  ``N x N`` similarity matrix into ``N x max_negatives``.
* Feature level, :func:`barlow_twins_loss`: the cross-correlation ``C`` of the batch-standardised
  ID and LLM embeddings (``C = Z_id^T Z_llm / N`` with each dimension standardised to zero mean
  and unit variance over the items, population variance) is pushed to the identity::

      L_bt = sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2

  :func:`feature_alignment_loss` computes it separately for the items whose training popularity
  is above the batch median and for those at or below it, and sums the two.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recbole_faerec.model.precision import step_matmul

#: Added to the variances before the standardisation of Barlow Twins divides by them.
STANDARDISE_EPS = 1e-5
#: Logit of a masked InfoNCE entry: exp() of it is 0 next to any real similarity over ``tau``.
MASKED_LOGIT = -1e9


def item_alignment_loss(
    id_emb: torch.Tensor,
    llm_emb: torch.Tensor,
    tau: float,
    max_negatives: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """InfoNCE between the ID and LLM embeddings of distinct items (rows are items).

    Every item is an anchor; its negatives are all other items, or, with ``max_negatives``
    smaller than ``N - 1``, the other items of one random subset of ``max_negatives`` rows. The
    similarities to sampled negatives are computed in ``dtype`` (:func:`.precision.step_matmul`).
    """
    anchors = F.normalize(id_emb, dim=-1)
    keys = F.normalize(llm_emb, dim=-1)
    n = anchors.size(0)
    if max_negatives is None or n - 1 <= max_negatives:
        targets = torch.arange(n, device=anchors.device)
        return F.cross_entropy(anchors @ keys.T / tau, targets)
    sampled = torch.randperm(n, device=anchors.device)[:max_negatives]
    positive = (anchors * keys).sum(-1, keepdim=True)
    negatives = step_matmul(anchors, keys.index_select(0, sampled).T, dtype)
    # Column j holds item sampled[j], the positive of row sampled[j] only: mask those entries
    # (a finite mask, so that a row with no other negative gets a zero gradient, not NaN).
    columns = torch.arange(sampled.numel(), device=anchors.device)
    negatives.index_put_((sampled, columns), negatives.new_tensor(MASKED_LOGIT))
    # Column 0 holds each row's positive: InfoNCE is the cross-entropy of the logits with class 0.
    logits = torch.cat([positive, negatives], dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long, device=anchors.device))


def _standardise(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Columns to zero mean and unit population variance: ``(x - mean) / sqrt(var + eps)``, which
    is batch normalisation in training mode without affine parameters (one fused kernel forward
    and backward instead of a chain of element-wise ones)."""
    return F.batch_norm(x, None, None, training=True, momentum=0.0, eps=eps)


def _barlow_twins_stacked(views: torch.Tensor, lambd: float, eps: float) -> torch.Tensor:
    """:func:`barlow_twins_loss` of the two views side by side in ``views`` (``N x 2d``): both are
    standardised in one pass."""
    n, d = views.size(0), views.size(1) // 2
    z = _standardise(views, eps)
    corr = z[:, :d].T @ z[:, d:] / n
    diagonal = torch.diagonal(corr)
    on_diag = (1.0 - diagonal).pow(2).sum()
    off_diag = corr.pow(2).sum() - diagonal.pow(2).sum()
    return on_diag + lambd * off_diag


def barlow_twins_loss(
    id_emb: torch.Tensor, llm_emb: torch.Tensor, lambd: float, eps: float = STANDARDISE_EPS
) -> torch.Tensor:
    """Barlow Twins redundancy reduction on the cross-correlation of two views of ``N`` items."""
    return _barlow_twins_stacked(torch.cat([id_emb, llm_emb], dim=1), lambd, eps)


def popularity_split(popularity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks of the items above the median popularity and of those at or below it."""
    median = popularity.float().median()
    high = popularity.float() > median
    return high, ~high


def feature_alignment_loss(
    id_emb: torch.Tensor,
    llm_emb: torch.Tensor,
    popularity: torch.Tensor | None,
    lambd: float,
) -> torch.Tensor:
    """Barlow Twins per popularity group (summed), or on all items when ``popularity`` is None.

    A group with fewer than two items has no variance to standardise and contributes zero.
    """
    views = torch.cat([id_emb, llm_emb], dim=1)
    if popularity is None:
        return _barlow_twins_stacked(views, lambd, STANDARDISE_EPS)
    loss = id_emb.new_zeros(())
    for mask in popularity_split(popularity):
        rows = mask.nonzero().squeeze(1)
        if rows.numel() >= 2:
            loss = loss + _barlow_twins_stacked(views.index_select(0, rows), lambd, STANDARDISE_EPS)
    return loss
