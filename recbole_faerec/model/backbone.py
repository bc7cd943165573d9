"""A RecBole sequential backbone behind the plugin's training protocol.

:class:`Backbone` is what ``--base`` trains: the backbone's own encoder, item table and scoring,
with the plugin's loss choices (RecBole's ``CE`` and ``BPR`` and the paper's ``BCE``) and data
pipeline, so that a bare run and a FAERec run differ only in FAERec itself.
:class:`~recbole_faerec.model.faerec.FAERec` extends it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from recbole.model.abstract_recommender import SequentialRecommender
from torch import nn

from recbole_faerec.model.registry import get_sequential_model

LOSS_TYPES = ("CE", "BPR", "BCE")


def build_backbone(config, dataset) -> SequentialRecommender:
    """Instantiate RecBole's class for ``config['backbone']`` and check it has an item table.

    RecBole backbones only know ``CE`` and ``BPR``; for the paper's ``BCE`` the backbone is built
    as a ``CE`` model (its layers are the same) and the plugin computes the loss itself.
    """
    name = config["backbone"]
    cls = get_sequential_model(name)
    loss_type = config["loss_type"]
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type: '{loss_type}' is not one of {', '.join(LOSS_TYPES)}.")
    config["loss_type"] = "CE" if loss_type == "BCE" else loss_type
    try:
        model = cls(config, dataset)
    finally:
        config["loss_type"] = loss_type
    table = getattr(model, "item_embedding", None)
    if not isinstance(table, nn.Embedding):
        raise ValueError(
            f"backbone: '{name}' keeps no item table in `item_embedding` (an nn.Embedding), so "
            "FAERec cannot fuse LLM embeddings into it. Choose a backbone listed by "
            "`--list-backbones`."
        )
    return model


class Backbone(SequentialRecommender):
    """The bare backbone named by ``config['backbone']``, trained by the plugin's pipeline."""

    loss_names: tuple[str, ...] = ("rec",)

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.loss_type = config["loss_type"]
        self.backbone = build_backbone(config, dataset)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer at the start of every training epoch."""
        self.epoch = epoch

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        return self.backbone(item_seq, item_seq_len)

    @property
    def item_table(self) -> nn.Module:
        """The module the backbone embeds and scores items with."""
        return self.backbone.item_embedding

    def sample_negatives(self, positives: torch.Tensor) -> torch.Tensor:
        """One uniform negative item per positive, never the positive itself nor padding."""
        negatives = torch.randint(1, self.n_items - 1, positives.shape, device=positives.device)
        return negatives + (negatives >= positives).long()

    def prepare_batch(self, interaction) -> None:
        """Add what the loss needs to the batch: for ``BCE``, one sampled negative per target."""
        if self.loss_type == "BCE":
            interaction[self.NEG_ITEM_ID] = self.sample_negatives(interaction[self.POS_ITEM_ID])

    def recommendation_loss(self, interaction) -> torch.Tensor:
        """``L_rec``: the backbone's own CE/BPR loss, or BCE with the batch's sampled negatives."""
        if self.loss_type != "BCE":
            return self.backbone.calculate_loss(interaction)
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        positives = interaction[self.POS_ITEM_ID]
        negatives = interaction[self.NEG_ITEM_ID]
        pos_score = (seq_output * self.item_table(positives)).sum(-1)
        neg_score = (seq_output * self.item_table(negatives)).sum(-1)
        return F.softplus(-pos_score).mean() + F.softplus(neg_score).mean()

    def calculate_loss(self, interaction) -> tuple[torch.Tensor, ...]:
        self.prepare_batch(interaction)
        return (self.recommendation_loss(interaction),)

    def predict(self, interaction) -> torch.Tensor:
        return self.backbone.predict(interaction)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        return self.backbone.full_sort_predict(interaction)
