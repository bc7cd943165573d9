"""LRURec: sequential recommendation with linear recurrent units.

Reference:
    Zhenrui Yue, Yueqi Wang, Zhankui He, Huimin Zeng, Julian McAuley and Dong Wang. "Linear
    Recurrent Units for Sequential Recommendation." In WSDM 2024.
    The LRU itself: Antonio Orvieto et al. "Resurrecting Recurrent Neural Networks for Long
    Sequences." In ICML 2023.

Each block is an LRU sublayer followed by a position-wise feed-forward network. The LRU keeps a
complex diagonal state of size N per position (``2 H`` by default, as in LRURec),

    h_t = lambda * h_{t-1} + gamma * (B x_t + b),        y_t = Re(C h_t + c),

with ``lambda = exp(-exp(nu) + i exp(theta))`` (so ``|lambda| < 1`` always), ring initialisation
(``lambda`` uniform on the annulus ``r_min <= |lambda| <= r_max``, i.e. ``|lambda|^2`` uniform on
``[r_min^2, r_max^2]`` as in the LRU paper, phase uniform on ``[0, max_phase]``) and the
normalisation ``gamma = sqrt(1 - |lambda|^2)``. As in LRURec, the complex projections ``B, b, C,
c`` start from a normal of std ``initializer_range`` truncated at two stds, and the LRU paper's
skip term ``D x_t`` is left out: the residual around the sublayer carries the input. The sublayer
output goes through dropout, residual and LayerNorm. The recurrence already encodes order, so
LRURec uses no position embedding (``use_position_embedding`` adds one).
Training evaluates the recurrence with a log-depth parallel scan (:meth:`LRULayer.parallel_scan`);
:meth:`LRULayer.sequential_scan` is the step-by-step reference. The recurrence is causal, so
right padding never reaches earlier positions, and batches can be cut to their longest sequence.
"""

from __future__ import annotations

import torch
from recbole.model.layers import FeedForward
from torch import nn

from recbole_faerec.model.sequential_recommender.next_item import NextItemRecommender


class LRULayer(nn.Module):
    """Linear recurrent unit with complex diagonal recurrence, dropout, residual and LayerNorm."""

    def __init__(
        self,
        hidden_size: int,
        state_size: int,
        r_min: float,
        r_max: float,
        max_phase: float,
        hidden_dropout_prob: float,
        layer_norm_eps: float,
        initializer_range: float = 0.02,
    ) -> None:
        super().__init__()
        if not 0.0 <= r_min < r_max < 1.0:
            raise ValueError(f"LRU needs 0 <= r_min < r_max < 1, got {r_min=}, {r_max=}")
        u1 = 1.0 - torch.rand(state_size)
        u2 = 1.0 - torch.rand(state_size)
        nu_log = torch.log(-0.5 * torch.log(u1 * (r_max**2 - r_min**2) + r_min**2))
        theta_log = torch.log(max_phase * u2)
        modulus = torch.exp(-torch.exp(nu_log))
        self.nu_log = nn.Parameter(nu_log)
        self.theta_log = nn.Parameter(theta_log)
        self.gamma_log = nn.Parameter(torch.log(torch.sqrt(1.0 - modulus**2)))
        self.B_re = nn.Parameter(torch.empty(state_size, hidden_size))
        self.B_im = nn.Parameter(torch.empty(state_size, hidden_size))
        self.b_re = nn.Parameter(torch.empty(state_size))
        self.b_im = nn.Parameter(torch.empty(state_size))
        self.C_re = nn.Parameter(torch.empty(hidden_size, state_size))
        self.C_im = nn.Parameter(torch.empty(hidden_size, state_size))
        self.c = nn.Parameter(torch.empty(hidden_size))  # Re(c): the imaginary part never shows
        std = initializer_range
        for weight in (self.B_re, self.B_im, self.b_re, self.b_im, self.C_re, self.C_im, self.c):
            nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)
        self.dropout = nn.Dropout(hidden_dropout_prob)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def recurrence_weight(self) -> torch.Tensor:
        """The complex diagonal ``lambda`` of shape (N,)."""
        return torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))

    def parallel_scan(self, inputs: torch.Tensor) -> torch.Tensor:
        """All states ``h_t = lambda * h_{t-1} + inputs_t`` (``h_{-1} = 0``), inputs (B, L, N).

        Log-depth inclusive scan of the associative operator (a, b) o (a', b') = (a a', a' b + b')
        specialised to a time-invariant ``lambda``: after the step with offset d every state holds
        the sum of the last 2d inputs, weighted by the matching powers of ``lambda``. Works for any
        length L in ceil(log2 L) steps.
        """
        power = self.recurrence_weight()
        states = inputs
        offset = 1
        seq_len = inputs.size(1)
        while offset < seq_len:
            shifted = nn.functional.pad(states[:, : seq_len - offset], (0, 0, offset, 0))
            states = states + power * shifted
            power = power * power
            offset *= 2
        return states

    def sequential_scan(self, inputs: torch.Tensor) -> torch.Tensor:
        """Reference step-by-step evaluation of :meth:`parallel_scan`."""
        weight = self.recurrence_weight()
        state = torch.zeros_like(inputs[:, 0])
        states = []
        for t in range(inputs.size(1)):
            state = weight * state + inputs[:, t]
            states.append(state)
        return torch.stack(states, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gamma = torch.exp(self.gamma_log)
        bx = torch.complex(x @ self.B_re.T + self.b_re, x @ self.B_im.T + self.b_im) * gamma
        h = self.parallel_scan(bx)
        y = h.real @ self.C_re.T - h.imag @ self.C_im.T + self.c
        return self.LayerNorm(self.dropout(y) + x)


class LRUBlock(nn.Module):
    """One LRURec block: LRU sublayer followed by a position-wise feed-forward layer."""

    def __init__(
        self,
        hidden_size: int,
        state_size: int,
        inner_size: int,
        r_min: float,
        r_max: float,
        max_phase: float,
        hidden_dropout_prob: float,
        hidden_act: str,
        layer_norm_eps: float,
        initializer_range: float,
    ) -> None:
        super().__init__()
        self.lru = LRULayer(
            hidden_size,
            state_size,
            r_min,
            r_max,
            max_phase,
            hidden_dropout_prob,
            layer_norm_eps,
            initializer_range,
        )
        self.feed_forward = FeedForward(
            hidden_size, inner_size, hidden_dropout_prob, hidden_act, layer_norm_eps
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feed_forward(self.lru(x))


class LRURec(NextItemRecommender):
    """LRURec (see the module docstring)."""

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)

        self.n_layers = config["n_layers"]
        self.hidden_size = config["hidden_size"]
        self.state_size = config["state_size"] or 2 * self.hidden_size
        self.inner_size = config["inner_size"]
        self.hidden_dropout_prob = config["hidden_dropout_prob"]
        self.hidden_act = config["hidden_act"]
        self.layer_norm_eps = config["layer_norm_eps"]
        self.r_min = config["r_min"]
        self.r_max = config["r_max"]
        self.max_phase = config["max_phase"]
        self.use_position_embedding = config["use_position_embedding"]
        self.initializer_range = config["initializer_range"]

        self._init_input_layers(
            self.hidden_size,
            self.layer_norm_eps,
            self.hidden_dropout_prob,
            positions=self.use_position_embedding,
        )
        self.blocks = nn.ModuleList(
            LRUBlock(
                self.hidden_size,
                self.state_size,
                self.inner_size,
                self.r_min,
                self.r_max,
                self.max_phase,
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
