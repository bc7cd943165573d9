"""gMLP: gated MLPs with a causal spatial gating unit, for sequential recommendation.

Reference:
    Hanxiao Liu, Zihang Dai, David R. So and Quoc V. Le. "Pay Attention to MLPs." In NeurIPS 2021.

Each block is ``x + Dropout(W_down(SGU(GELU(W_up(LayerNorm(x))))))``. The spatial gating unit
(SGU) splits its input along the channels into halves ``u`` and ``v``, normalises ``v`` with
LayerNorm, mixes it along the sequence with a learnable L x L matrix plus a per-position bias,
``v'_t = sum_s W[t, s] v_s + b_t``, and returns ``u * v'``. As in the paper's autoregressive
variant, ``W`` is masked to its lower triangle (``W[t, s] = 0`` for ``s > t``) so every output
depends only on items at positions <= t; ``W`` starts near zero and ``b`` at one, so each block
starts close to a plain gated feed-forward network. A final LayerNorm follows the last block.
"""

from __future__ import annotations

import torch
from torch import nn

from recbole_faerec.model.sequential_recommender.next_item import NextItemRecommender


class CausalSpatialGatingUnit(nn.Module):
    """Spatial gating unit with a lower-triangular (causal) token-mixing matrix."""

    def __init__(
        self, max_seq_length: int, gate_size: int, layer_norm_eps: float, init_eps: float
    ) -> None:
        super().__init__()
        self.LayerNorm = nn.LayerNorm(gate_size, eps=layer_norm_eps)
        self.spatial_weight = nn.Parameter(
            torch.empty(max_seq_length, max_seq_length).uniform_(-init_eps, init_eps)
        )
        self.spatial_bias = nn.Parameter(torch.ones(max_seq_length))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq_len = x.size(1)
        u, v = x.chunk(2, dim=-1)
        v = self.LayerNorm(v)
        weight = torch.tril(self.spatial_weight[:seq_len, :seq_len])
        v = torch.einsum("ts,bsc->btc", weight, v) + self.spatial_bias[:seq_len, None]
        return u * v


class GMLPBlock(nn.Module):
    """One pre-norm gMLP block with a residual connection."""

    def __init__(
        self,
        max_seq_length: int,
        hidden_size: int,
        inner_size: int,
        hidden_dropout_prob: float,
        layer_norm_eps: float,
        init_eps: float,
    ) -> None:
        super().__init__()
        if inner_size % 2:
            raise ValueError(f"gMLP needs an even inner_size, got {inner_size}")
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.proj_up = nn.Linear(hidden_size, inner_size)
        self.activation = nn.GELU()
        self.sgu = CausalSpatialGatingUnit(
            max_seq_length, inner_size // 2, layer_norm_eps, init_eps
        )
        self.proj_down = nn.Linear(inner_size // 2, hidden_size)
        self.dropout = nn.Dropout(hidden_dropout_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.activation(self.proj_up(self.LayerNorm(x)))
        return x + self.dropout(self.proj_down(self.sgu(y)))


class gMLP(NextItemRecommender):
    """gMLP sequential recommender (see the module docstring)."""

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)

        self.n_layers = config["n_layers"]
        self.hidden_size = config["hidden_size"]
        self.inner_size = config["inner_size"]
        self.hidden_dropout_prob = config["hidden_dropout_prob"]
        self.layer_norm_eps = config["layer_norm_eps"]
        self.spatial_init_eps = config["spatial_init_eps"]
        self.initializer_range = config["initializer_range"]

        self._init_input_layers(self.hidden_size, self.layer_norm_eps, self.hidden_dropout_prob)
        self.blocks = nn.ModuleList(
            GMLPBlock(
                self.max_seq_length,
                self.hidden_size,
                self.inner_size,
                self.hidden_dropout_prob,
                self.layer_norm_eps,
                self.spatial_init_eps,
            )
            for _ in range(self.n_layers)
        )
        self.final_LayerNorm = nn.LayerNorm(self.hidden_size, eps=self.layer_norm_eps)

        self.apply(self._init_weights)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        output = self.embed_sequence(item_seq)
        for block in self.blocks:
            output = block(output)
        output = self.final_LayerNorm(output)
        return self.gather_indexes(output, item_seq_len - 1)
