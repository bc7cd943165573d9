"""Adaptive gating fusion of ID and LLM item embeddings (FAERec, Section 3.1).

Every item has a trainable ID embedding ``e_id`` and a frozen LLM text embedding. A two-layer MLP
projects the LLM embedding to the hidden size (``e_llm``) and a per-dimension gate mixes the two::

    g = sigmoid(W2 (W1 [e_id; e_llm] + b1) + b2)
    f = g * e_id + (1 - g) * e_llm

The ID table starts from a PCA of the LLM table. LLM tables wider than ``llm_input_dim`` enter
the projection as their top principal components (computed once, frozen), so that the
projection's cost per item does not grow with the square of a large model's width.
:class:`FusedItemEmbedding` stands in for a
backbone's ``nn.Embedding`` item table: calling it returns the fused embedding ``f`` of the given
ids (the sequence input), and its ``weight`` is the table the backbone scores items with.

Evaluation scores with an equal-weight fusion of the two views (``score_table``): ``mean``,
``(e_id + e_llm) / 2`` as the paper writes it, or ``layernorm``, ``LayerNorm(e_id + e_llm)`` as the
authors' code computes it (with the backbone's input LayerNorm when it has one), which gives
every item vector the same scale. Training targets and sampled negatives are scored against
``target_table``: ``mean`` (as above), ``fused`` (the gated table) or ``id`` (the ID view alone,
as in the authors' code).

Work is never repeated: inside :meth:`FusedItemEmbedding.step` each distinct item is projected
and gated once and every lookup of that training step reuses the result; in eval mode the full
tables are built once and kept until the module goes back to training.

A backbone whose table has rows beyond the items (BERT4Rec's mask token) keeps them as plain
trainable embeddings after the item rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from recbole_faerec.model.precision import padded_rows

FUSION_MODES = ("gate", "sum", "id", "llm")
TARGET_TABLES = ("mean", "fused", "id")
SCORE_TABLES = ("mean", "layernorm")


#: Tables with more entries than this take the covariance route of :func:`pca_initialisation`.
SVD_MAX_ENTRIES = 50_000_000
#: Random states per entry of :class:`BitMaskDropout`'s mask (15 bits).
BIT_MASK_STATES = 1 << 15
#: Rows per chunk of the covariance route and of the evaluation-time projection of large tables.
CHUNK_ROWS = 65_536


def pca_initialisation(
    llm_table: torch.Tensor, dim: int, svd_max_entries: int = SVD_MAX_ENTRIES
) -> torch.Tensor:
    """ID table initialised with the PCA scores of the LLM table (row 0, padding, stays zero).

    Rows ``1..n`` are the centred LLM embeddings projected on their top ``dim`` principal
    directions. When ``dim`` exceeds the number of directions, the remaining columns are drawn
    from a normal distribution with the scores' standard deviation.

    Tables of up to ``svd_max_entries`` entries take the directions from an SVD of the centred
    table (in float64). Larger ones (a million items of a 1536-d model would need tens of GB for
    that) take them from an eigendecomposition of the ``llm_dim x llm_dim`` covariance, which is
    accumulated and projected in row chunks: the same directions (up to sign) in
    ``O(llm_dim^2)`` extra memory.
    """
    items = llm_table[1:]
    if items.numel() <= svd_max_entries:
        centred = items.double() - items.double().mean(dim=0)
        _, _, vh = torch.linalg.svd(centred, full_matrices=False)
        scores = centred @ vh[:dim].T
    else:
        directions, mean = _covariance_directions(items, dim)
        scores = torch.cat(
            [((chunk.double() - mean) @ directions).float() for chunk in items.split(CHUNK_ROWS)]
        )
    if scores.size(1) < dim:
        extra = torch.randn(scores.size(0), dim - scores.size(1), dtype=scores.dtype)
        scores = torch.cat([scores, extra * scores.std()], dim=1)
    table = torch.zeros(llm_table.size(0), dim, dtype=torch.float32)
    table[1:] = scores.float()
    return table


def _covariance_directions(items: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``dim`` principal directions (columns, by decreasing variance) and the mean."""
    total = torch.zeros(items.size(1), dtype=torch.float64)
    for chunk in items.split(CHUNK_ROWS):
        total += chunk.double().sum(dim=0)
    mean = total / max(items.size(0), 1)
    covariance = torch.zeros(items.size(1), items.size(1), dtype=torch.float64)
    for chunk in items.split(CHUNK_ROWS):
        centred = chunk.float() - mean.float()
        covariance += (centred.T @ centred).double()
    _, vectors = torch.linalg.eigh(covariance)
    return vectors.flip(1)[:, :dim], mean


class BitMaskDropout(nn.Dropout):
    """Dropout whose keep mask compares 15 random bits per entry with ``p``: about half the cost
    of :class:`torch.nn.Dropout` on the CPU, where drawing the mask (``bernoulli_``, or one
    ``rand`` float per entry) is the slowest kernel of a training step. Four entries share one
    64-bit draw. ``p`` is rounded to a multiple of ``2**-15`` (0.1 becomes 0.100006) and kept
    entries are scaled by the inverse of the rounded keep rate, so the expectation is exact."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        dropped = round(self.p * BIT_MASK_STATES)
        words = torch.empty(-(-x.numel() // 4), dtype=torch.int64, device=x.device).random_()
        bits = words.view(torch.int16)[: x.numel()].view(x.shape) & (BIT_MASK_STATES - 1)
        return x * (bits >= dropped) * (BIT_MASK_STATES / (BIT_MASK_STATES - dropped))


class LLMProjection(nn.Sequential):
    """Two-layer MLP ``llm_dim -> llm_dim / 2 -> hidden`` with GELU and dropout."""

    def __init__(self, llm_dim: int, hidden_size: int, dropout: float) -> None:
        super().__init__(
            nn.Linear(llm_dim, llm_dim // 2),
            nn.GELU(),
            BitMaskDropout(dropout),
            nn.Linear(llm_dim // 2, hidden_size),
        )


class AdaptiveGate(nn.Module):
    """Per-dimension gate ``g = sigmoid(W2 (W1 [e_id; e_llm] + b1) + b2)`` (the paper's Eq. 3).

    ``W1`` is ``2d x 2d`` and ``W2`` is ``d x 2d``: the concatenated views stay ``2d`` wide through
    the first layer and the second maps them to one gate value per dimension.

    Eq. 3 has no activation between the two layers, so the gate is one affine map with the
    weight ``W2 W1`` and the bias ``W2 b1 + b2``. The forward pass forms that product once per
    call (``4 d^3`` multiply-adds) and applies it to every item (``2 d^2`` each, a third of the
    ``6 d^2`` of two layers). Both layers stay the parameters, so the function and the gradients
    of ``W1``, ``b1``, ``W2`` and ``b2`` are those of Eq. 3.
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(2 * hidden_size, 2 * hidden_size)
        self.w2 = nn.Linear(2 * hidden_size, hidden_size)

    def forward(self, e_id: torch.Tensor, e_llm: torch.Tensor) -> torch.Tensor:
        weight = self.w2.weight @ self.w1.weight
        bias = self.w2(self.w1.bias)
        logits = nn.functional.linear(torch.cat([e_id, e_llm], dim=-1), weight, bias)
        return torch.sigmoid(logits.float())


class _ItemViews:
    """ID, projected LLM and fused embeddings of a set of items, with an id -> row map.

    Padding (id 0) always maps to a zero row: row 0 of the full tables, or an extra last row of
    the tables of a subset, so that lookups need no padding mask.
    """

    def __init__(self, rows: torch.Tensor | None, e_id, e_llm, fused) -> None:
        self.rows = rows
        self.e_id, self.e_llm, self.fused = e_id, e_llm, fused

    @property
    def covers_all(self) -> bool:
        return self.rows is None

    def covers(self, ids: torch.Tensor) -> bool:
        return self.rows is None or bool((self.rows[ids] >= 0).all())

    def lookup(self, view: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Rows of ``view`` (one of this object's tables) for the item ``ids``, any shape.

        A table lookup (``F.embedding``) rather than advanced indexing: the same values and
        gradients (up to the order of the float sums), but its backward, a dense scatter-add, is up
        to twice as fast on the CPU as the accumulating ``index_put`` behind ``view[index]``.
        """
        index = ids if self.rows is None else self.rows[ids]
        return nn.functional.embedding(index, view)


class FusedItemEmbedding(nn.Module):
    """Drop-in replacement of a backbone's item ``nn.Embedding`` with FAERec's fused table.

    Args:
        llm_table: frozen LLM embeddings, one row per RecBole item id (row 0 is padding).
        hidden_size: the backbone's item embedding size.
        dropout: dropout inside the LLM projection.
        fusion: ``gate`` (the paper), ``sum`` (gate fixed at 0.5), ``id`` or ``llm`` (one view).
        target_table: table used for training targets, ``mean``, ``fused`` or ``id``.
        score_table: table used for evaluation, ``mean`` or ``layernorm``.
        score_norm: the LayerNorm of ``score_table: layernorm`` (default: one without parameters).
        extra_rows: rows after the items (e.g. a mask token), plain trainable embeddings.
        llm_input_dim: a wider ``llm_table`` is replaced by its top ``llm_input_dim`` principal
            component scores before the projection; None keeps every dimension.
        step_dtype: dtype of the projection's and the gate's products in training steps
            (:mod:`.precision`); evaluation always computes in float32.
    """

    def __init__(
        self,
        llm_table: torch.Tensor,
        hidden_size: int,
        dropout: float = 0.1,
        fusion: str = "gate",
        target_table: str = "mean",
        score_table: str = "mean",
        score_norm: nn.Module | None = None,
        extra_rows: int = 0,
        llm_input_dim: int | None = None,
        step_dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        llm_table = llm_table.float()
        reduced = llm_input_dim is not None and llm_table.size(1) > llm_input_dim
        if reduced:
            llm_table = pca_initialisation(llm_table, llm_input_dim)
        self.num_items, llm_dim = llm_table.shape
        self.num_embeddings = self.num_items + extra_rows
        self.embedding_dim = hidden_size
        self.fusion = fusion
        self.target_table = target_table
        self.score_table = score_table
        self.step_dtype = step_dtype
        if score_table == "layernorm" and score_norm is None:
            score_norm = nn.LayerNorm(hidden_size, elementwise_affine=False)
        self.score_norm = score_norm if score_table == "layernorm" else None
        self.register_buffer("llm_table", llm_table)
        self.id_embedding = nn.Embedding(self.num_items, hidden_size, padding_idx=0)
        if reduced and hidden_size <= llm_dim:
            # The reduced table holds principal component scores, by decreasing variance.
            self.id_embedding.weight.data.copy_(llm_table[:, :hidden_size])
        else:
            self.id_embedding.weight.data.copy_(pca_initialisation(llm_table, hidden_size))
        self.projection = LLMProjection(llm_dim, hidden_size, dropout)
        self.gate = AdaptiveGate(hidden_size)
        self.extra_embedding = nn.Embedding(extra_rows, hidden_size) if extra_rows else None
        if self.extra_embedding is not None:
            nn.init.normal_(self.extra_embedding.weight, std=0.02)
        self._step_views: _ItemViews | None = None
        self._eval_views: _ItemViews | None = None
        self._eval_scores: torch.Tensor | None = None
        self.register_load_state_dict_post_hook(lambda module, _: module.drop_eval_tables())

    # -- the two views and their fusion -------------------------------------------------------
    def views(self, ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """ID and projected LLM embeddings of ``ids`` (all items when None)."""
        cached = self._cached_views()
        if cached is not None and ids is None and cached.covers_all:
            return cached.e_id, cached.e_llm
        if cached is not None and ids is not None and cached.covers(ids):
            return cached.lookup(cached.e_id, ids), cached.lookup(cached.e_llm, ids)
        return self._raw_views(ids)

    def _raw_views(self, ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if ids is None:
            return self.id_embedding.weight, self._project_all()
        return self.id_embedding(ids), self.projection(nn.functional.embedding(ids, self.llm_table))

    def _project_all(self) -> torch.Tensor:
        """The projected LLM table; without gradients (evaluation), large tables are projected in
        chunks of rows so that the MLP's hidden layer never holds the whole catalog."""
        if torch.is_grad_enabled() or self.num_items <= CHUNK_ROWS:
            return self.projection(self.llm_table)
        return torch.cat([self.projection(rows) for rows in self.llm_table.split(CHUNK_ROWS)])

    def fuse(self, e_id: torch.Tensor, e_llm: torch.Tensor) -> torch.Tensor:
        """Fused embedding ``f`` of aligned ID and LLM views, following ``fusion``."""
        if self.fusion == "gate":
            g = self.gate(e_id, e_llm)
            return torch.lerp(e_llm, e_id, g)  # g * e_id + (1 - g) * e_llm in one kernel
        return self.equal_weight(e_id, e_llm, "mean")

    def equal_weight(self, e_id: torch.Tensor, e_llm: torch.Tensor, kind: str) -> torch.Tensor:
        """Equal-weight fusion, ``mean`` or ``layernorm`` (one view for ``id``/``llm`` fusion)."""
        if self.fusion == "id":
            return e_id
        if self.fusion == "llm":
            return e_llm
        if kind == "layernorm":
            return self.score_norm(e_id + e_llm)
        return 0.5 * (e_id + e_llm)

    def table(self, kind: str, views: _ItemViews) -> torch.Tensor:
        """The ``kind`` table (``fused``, ``id``, ``mean`` or ``layernorm``) of ``views``."""
        if kind == "fused":
            return views.fused
        if kind == "id":
            return views.e_id
        return self.equal_weight(views.e_id, views.e_llm, kind)

    def _compute_views(self, ids: torch.Tensor | None) -> _ItemViews:
        """Views of the distinct non-padding ``ids`` (all items when None), padding zeroed."""
        if ids is None:
            e_id, e_llm = self._raw_views(ids)
            keep = (torch.arange(e_id.size(0), device=e_id.device) != 0).unsqueeze(-1)
            e_id, e_llm = e_id * keep, e_llm * keep
            return _ItemViews(None, e_id, e_llm, self.fuse(e_id, e_llm) * keep)
        e_id, e_llm, fused = self._subset_views(ids)
        rows = torch.full((self.num_items,), -1, dtype=torch.long, device=ids.device)
        rows[ids] = torch.arange(ids.numel(), device=ids.device)
        rows[0] = ids.numel()
        zero = e_id.new_zeros(1, e_id.size(1))
        padded = (torch.cat([view, zero]) for view in (e_id, e_llm, fused))
        return _ItemViews(rows, *padded)

    def _subset_views(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ID, projected LLM and fused rows of ``ids``. With a low-precision ``step_dtype`` (and
        gradients on) the products run in that dtype over ``ids`` padded with the padding item
        (:mod:`.precision`)."""
        if self.step_dtype == torch.float32 or not torch.is_grad_enabled():
            e_id, e_llm = self._raw_views(ids)
            return e_id, e_llm, self.fuse(e_id, e_llm)
        n = ids.numel()
        padded = nn.functional.pad(ids, (0, padded_rows(n)))
        e_id = self.id_embedding(padded)
        with torch.autocast(device_type=ids.device.type, dtype=self.step_dtype):
            e_llm = self.projection(nn.functional.embedding(padded, self.llm_table)).float()
            fused = self.fuse(e_id, e_llm)
        return e_id[:n], e_llm[:n], fused[:n]

    def _views_covering(self, ids: torch.Tensor) -> _ItemViews:
        cached = self._cached_views()
        if cached is not None and cached.covers(ids):
            return cached
        unique = torch.unique(ids)
        return self._compute_views(unique[unique != 0])

    def _cached_views(self) -> _ItemViews | None:
        if self.training:
            return self._step_views
        if self._eval_views is None:
            self._eval_views = self._compute_views(None)
        return self._eval_views

    # -- the nn.Embedding interface the backbone uses ----------------------------------------
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Fused embeddings of ``ids`` (any shape); padding (id 0) maps to zeros."""
        extra = ids >= self.num_items
        item_ids = ids.masked_fill(extra, 0)
        views = self._views_covering(item_ids)
        fused = views.lookup(views.fused, item_ids)
        if self.extra_embedding is not None:
            extra_ids = (ids - self.num_items).clamp(min=0)
            fused = fused + self.extra_embedding(extra_ids) * extra.unsqueeze(-1)
        return fused

    def target_embedding(self, ids: torch.Tensor) -> torch.Tensor:
        """Embeddings that training targets and sampled negatives are scored against: the
        ``target_table`` rows of ``ids``, the same choice as the rows of :attr:`weight` in training.
        """
        if self.target_table == "fused":
            return self(ids)
        views = self._views_covering(ids)
        return views.lookup(self.table(self.target_table, views), ids)

    @property
    def weight(self) -> torch.Tensor:
        """Item table the backbone scores with: training targets, or the evaluation table."""
        if self.training:
            cached = self._step_views
            if cached is None or not cached.covers_all:
                cached = self._compute_views(None)
            return self._with_extra_rows(self.table(self.target_table, cached))
        if self._eval_scores is None:
            table = self.table(self.score_table, self._cached_views())
            self._eval_scores = self._with_extra_rows(table)
        return self._eval_scores

    def _with_extra_rows(self, table: torch.Tensor) -> torch.Tensor:
        if self.extra_embedding is None:
            return table
        return torch.cat([table, self.extra_embedding.weight], dim=0)

    # -- caching --------------------------------------------------------------------------------
    @contextmanager
    def step(self, ids: torch.Tensor | None = None) -> Iterator[None]:
        """Project and gate each item of a training step once: ``ids`` (distinct) or all items."""
        self._step_views = self._compute_views(ids)
        try:
            yield
        finally:
            self._step_views = None

    def drop_eval_tables(self) -> None:
        """Forget the evaluation tables; they are rebuilt from the current weights on first use."""
        self._eval_views = None
        self._eval_scores = None

    def train(self, mode: bool = True) -> FusedItemEmbedding:
        """Switch mode and drop the evaluation tables."""
        self.drop_eval_tables()
        return super().train(mode)
