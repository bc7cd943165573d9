"""FMLP-Rec: an all-MLP sequential recommender with learnable frequency-domain filters.

Reference:
    Kun Zhou, Hui Yu, Wayne Xin Zhao and Ji-Rong Wen. "Filter-enhanced MLP is All You Need for
    Sequential Recommendation." In WWW 2022.

Each block replaces self-attention by a learnable filter along the sequence (FFT, element-wise
multiplication by a learnable per-channel spectrum, inverse FFT), followed by dropout, residual and
LayerNorm, and then a point-wise feed-forward network (residual and LayerNorm).

Causality (deviation from the paper). The paper multiplies the length-L spectrum of the sequence
by a free complex weight, which is a *circular* convolution with an arbitrary, two-sided kernel: the
output at position t depends on later items. The plugin trains with a loss at every position, so
every per-position output must depend only on items at positions <= t. We therefore parameterise
the filter by its real impulse response ``k`` of length ``max_seq_length`` per channel (the causal
kernel), zero-pad both the sequence and ``k`` to length 2L before ``rfft`` and keep the first L
outputs of ``irfft``. This computes the linear convolution ``y[t] = sum_{s<=t} k[s] * x[t-s]``
exactly, so the filter is still learned and applied in the frequency domain (the learnable spectrum
is ``rfft(k, 2L)``), but it is restricted to causal kernels. The identity filter is ``k = delta``.
"""

from __future__ import annotations

import torch
from recbole.model.layers import FeedForward
from torch import nn

from recbole_faerec.model.sequential_recommender.next_item import NextItemRecommender


class CausalFilterLayer(nn.Module):
    """Learnable causal frequency-domain filter with dropout, residual and LayerNorm."""

    def __init__(
        self,
        max_seq_length: int,
        hidden_size: int,
        hidden_dropout_prob: float,
        layer_norm_eps: float,
        initializer_range: float,
    ) -> None:
        super().__init__()
        self.impulse_response = nn.Parameter(
            torch.randn(max_seq_length, hidden_size) * initializer_range
        )
        self.dropout = nn.Dropout(hidden_dropout_prob)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def filter(self, x: torch.Tensor) -> torch.Tensor:
        """Causally filter ``x`` of shape (B, L, H) along the sequence dimension."""
        seq_len = x.size(1)
        n_fft = 2 * seq_len
        kernel = self.impulse_response[:seq_len]
        x_freq = torch.fft.rfft(x, n=n_fft, dim=1)
        k_freq = torch.fft.rfft(kernel, n=n_fft, dim=0)
        y = torch.fft.irfft(x_freq * k_freq, n=n_fft, dim=1)
        return y[:, :seq_len]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.filter(x)) + x)


class FMLPBlock(nn.Module):
    """One FMLP-Rec block: causal filter layer followed by a point-wise feed-forward layer."""

    def __init__(
        self,
        max_seq_length: int,
        hidden_size: int,
        inner_size: int,
        hidden_dropout_prob: float,
        hidden_act: str,
        layer_norm_eps: float,
        initializer_range: float,
    ) -> None:
        super().__init__()
        self.filter_layer = CausalFilterLayer(
            max_seq_length, hidden_size, hidden_dropout_prob, layer_norm_eps, initializer_range
        )
        self.feed_forward = FeedForward(
            hidden_size, inner_size, hidden_dropout_prob, hidden_act, layer_norm_eps
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feed_forward(self.filter_layer(x))


class FMLPRec(NextItemRecommender):
    """FMLP-Rec with causal learnable filters (see the module docstring)."""

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)

        self.n_layers = config["n_layers"]
        self.hidden_size = config["hidden_size"]
        self.inner_size = config["inner_size"]
        self.hidden_dropout_prob = config["hidden_dropout_prob"]
        self.hidden_act = config["hidden_act"]
        self.layer_norm_eps = config["layer_norm_eps"]
        self.initializer_range = config["initializer_range"]

        self._init_input_layers(self.hidden_size, self.layer_norm_eps, self.hidden_dropout_prob)
        self.blocks = nn.ModuleList(
            FMLPBlock(
                self.max_seq_length,
                self.hidden_size,
                self.inner_size,
                self.hidden_dropout_prob,
                self.hidden_act,
                self.layer_norm_eps,
                self.initializer_range,
            )
            for _ in range(self.n_layers)
        )

        self.apply(self._init_weights)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        output = self.embed_sequence(item_seq)
        for block in self.blocks:
            output = block(output)
        return self.gather_indexes(output, item_seq_len - 1)
