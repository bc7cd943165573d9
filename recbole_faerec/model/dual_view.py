"""LLM-ESR's dual-view item table: a collaborative (ID) view and a semantic (LLM) view.

The semantic view is the frozen LLM table through a trainable adapter (two linear layers,
``llm_dim -> llm_dim / 2 -> hidden``, no activation, as in LLM-ESR's official code); the
collaborative view is an ID table initialised from the PCA of the LLM table (the same reduction as
FAERec's ID view and LLMInit). With cross-attention, each view's input sequence is replaced by
multi-head attention (two heads) from the other view's sequence as queries over its own as keys
and values, as the official code does; here the attention is causal, so that no position sees the
items after it (the official mask only hides padding, and its SASRec encoder is bidirectional).

:class:`DualViewItemEmbedding` stands in for the backbone's item table, so the backbone's own
encoder encodes both views: the model feeds it one view's sequence at a time
(:meth:`DualViewItemEmbedding.feeding`), and items are scored against the concatenation of the two
views (:attr:`DualViewItemEmbedding.weight`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from recbole_faerec.model.fusion import pca_initialisation

#: Heads of the cross-attention between the views (the official code's).
CROSS_ATTENTION_HEADS = 2


class ViewCrossAttention(nn.Module):
    """Causal multi-head attention of ``queries`` over ``context`` (keys and values)."""

    def __init__(self, hidden_size: int, heads: int = CROSS_ATTENTION_HEADS) -> None:
        super().__init__()
        if hidden_size % heads:
            raise ValueError(
                f"hidden_size: {hidden_size} does not split into {heads} cross-attention heads; "
                f"fix: a multiple of {heads}."
            )
        self.heads = heads
        self.query = nn.Linear(hidden_size, hidden_size, bias=False)
        self.key = nn.Linear(hidden_size, hidden_size, bias=False)
        self.value = nn.Linear(hidden_size, hidden_size, bias=False)
        self.output = nn.Linear(hidden_size, hidden_size)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        return x.view(batch, length, self.heads, hidden // self.heads).transpose(1, 2)

    def forward(
        self, queries: torch.Tensor, context: torch.Tensor, keep: torch.Tensor
    ) -> torch.Tensor:
        """``queries`` and ``context`` (batch, length, hidden); ``keep`` (batch, length) marks the
        real (non-padding) positions, the only ones attended to."""
        length = queries.size(1)
        causal = torch.ones(length, length, dtype=torch.bool, device=keep.device).tril()
        mask = causal & keep[:, None, None, :]
        q = self._split(self.query(queries))
        k, v = self._split(self.key(context)), self._split(self.value(context))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.output(attended.transpose(1, 2).reshape(queries.shape))


class DualViewItemEmbedding(nn.Module):
    """The backbone's item table under LLM-ESR: the ID and the adapted LLM view of every item.

    Args:
        llm_table: frozen LLM embeddings, one row per item id (row 0 is padding).
        hidden_size: the backbone's item embedding size.
        cross_attention: replace each view's input sequence by the cross-attention of the views.
    """

    def __init__(self, llm_table: torch.Tensor, hidden_size: int, cross_attention: bool) -> None:
        super().__init__()
        llm_table = llm_table.float()
        self.num_embeddings, llm_dim = llm_table.shape
        self.embedding_dim = hidden_size
        self.register_buffer("llm_table", llm_table)
        self.id_embedding = nn.Embedding(self.num_embeddings, hidden_size, padding_idx=0)
        self.id_embedding.weight.data.copy_(pca_initialisation(llm_table, hidden_size))
        self.adapter = nn.Sequential(
            nn.Linear(llm_dim, llm_dim // 2), nn.Linear(llm_dim // 2, hidden_size)
        )
        self.llm_to_id = ViewCrossAttention(hidden_size) if cross_attention else None
        self.id_to_llm = ViewCrossAttention(hidden_size) if cross_attention else None
        for name, parameter in self.named_parameters():
            if parameter.dim() == 2 and not name.startswith("id_embedding"):
                nn.init.xavier_normal_(parameter)  # the official code's initialisation
        self._fed: torch.Tensor | None = None

    def semantic(self, ids: torch.Tensor) -> torch.Tensor:
        """The adapted LLM view of ``ids`` (any shape); each distinct item is adapted once."""
        distinct, index = torch.unique(ids, return_inverse=True)
        return self.adapter(self.llm_table[distinct])[index]

    def views(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ID view, LLM view)`` of ``ids``."""
        return self.id_embedding(ids), self.semantic(ids)

    def sequence_views(self, item_seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two views' input sequences for the encoder, cross-attended when enabled."""
        e_id, e_llm = self.views(item_seq)
        if self.llm_to_id is None:
            return e_id, e_llm
        keep = item_seq != 0
        return self.llm_to_id(e_llm, e_id, keep), self.id_to_llm(e_id, e_llm, keep)

    @contextmanager
    def feeding(self, sequence: torch.Tensor) -> Iterator[None]:
        """While active, the backbone's lookup of its input sequence returns ``sequence``."""
        self._fed = sequence
        try:
            yield
        finally:
            self._fed = None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self._fed is None or self._fed.shape[:-1] != ids.shape:
            raise RuntimeError(
                "LLM-ESR's item table serves the sequence its model feeds it; call the backbone "
                "through the LLMESR model"
            )
        return self._fed

    @property
    def weight(self) -> torch.Tensor:
        """The scoring table: ``[ID view; LLM view]`` of every item, (items, 2 x hidden)."""
        return torch.cat([self.id_embedding.weight, self.adapter(self.llm_table)], dim=-1)

    def target_embedding(self, ids: torch.Tensor) -> torch.Tensor:
        """``[ID view; LLM view]`` of ``ids``: what targets and negatives are scored against."""
        return torch.cat(self.views(ids), dim=-1)
