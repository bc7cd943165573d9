"""The input layers and next-item heads shared by the plugin's sequential models.

Every model here embeds its input like SASRec (item + optional position embedding, LayerNorm,
dropout, SASRec's weight initialisation), encodes the sequence into one vector (``forward``) and
scores items with its ``item_embedding`` table like RecBole's SASRec: CE over the whole table or
BPR against RecBole's sampled negative, a dot product for ``predict`` and a matrix product for
``full_sort_predict``.
"""

from __future__ import annotations

import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.model.loss import BPRLoss
from torch import nn


class NextItemRecommender(SequentialRecommender):
    """A RecBole sequential model scoring next items against ``self.item_embedding``."""

    item_embedding: nn.Embedding

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.loss_type = config["loss_type"]
        if self.loss_type == "BPR":
            self.loss_fct = BPRLoss()
        elif self.loss_type == "CE":
            self.loss_fct = nn.CrossEntropyLoss()
        else:
            raise NotImplementedError("Make sure 'loss_type' in ['BPR', 'CE']!")

    def _init_input_layers(
        self, hidden_size: int, layer_norm_eps: float, dropout_prob: float, positions: bool = True
    ) -> None:
        """Item (and, if ``positions``, position) embeddings, LayerNorm and dropout of the input."""
        self.item_embedding = nn.Embedding(self.n_items, hidden_size, padding_idx=0)
        self.position_embedding = (
            nn.Embedding(self.max_seq_length, hidden_size) if positions else None
        )
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout_prob)

    def embed_sequence(self, item_seq: torch.Tensor) -> torch.Tensor:
        """Input representation of ``item_seq``: (batch, length, hidden)."""
        output = self.item_embedding(item_seq)
        if self.position_embedding is not None:
            position_ids = torch.arange(item_seq.size(1), dtype=torch.long, device=item_seq.device)
            output = output + self.position_embedding(position_ids).unsqueeze(0)
        return self.dropout(self.LayerNorm(output))

    def _init_weights(self, module: nn.Module) -> None:
        """Normal init for linear/embedding weights, zero biases, unit LayerNorm (as SASRec).

        Modules with their own initialisation (LRU recurrences, gMLP's spatial gate) keep it:
        their parameters are not ``nn.Linear``/``nn.Embedding`` weights.
        """
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=self.initializer_range)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    def calculate_loss(self, interaction) -> torch.Tensor:
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        seq_output = self.forward(item_seq, item_seq_len)
        pos_items = interaction[self.POS_ITEM_ID]
        if self.loss_type == "BPR":
            neg_items = interaction[self.NEG_ITEM_ID]
            pos_score = torch.sum(seq_output * self.item_embedding(pos_items), dim=-1)
            neg_score = torch.sum(seq_output * self.item_embedding(neg_items), dim=-1)
            return self.loss_fct(pos_score, neg_score)
        logits = torch.matmul(seq_output, self.item_embedding.weight.transpose(0, 1))
        return self.loss_fct(logits, pos_items)

    def predict(self, interaction) -> torch.Tensor:
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        seq_output = self.forward(item_seq, item_seq_len)
        test_item_emb = self.item_embedding(interaction[self.ITEM_ID])
        return torch.mul(seq_output, test_item_emb).sum(dim=1)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        seq_output = self.forward(item_seq, item_seq_len)
        return torch.matmul(seq_output, self.item_embedding.weight.transpose(0, 1))
