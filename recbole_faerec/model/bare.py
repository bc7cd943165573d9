"""A RecBole sequential backbone behind the plugin's training protocol.

:class:`BareBackbone` is what ``--base`` trains: the backbone's own encoder, item table and scoring,
with the plugin's loss choices (RecBole's ``CE`` and ``BPR`` and the paper's ``BCE``) and data
pipeline, so that a bare run and a FAERec run differ only in FAERec itself.
:class:`~recbole_faerec.model.faerec.FAERec` extends it. With ``text_prior: True`` both carry the
text prior (:mod:`recbole_faerec.text_prior`), which the pipeline fits after training and
:meth:`BareBackbone.full_sort_predict` adds to the scores.

Training modes (``train_mode``):

* ``prefix`` (RecBole's): every training prefix is a sample and the loss is taken at its end.
* ``all_positions`` (the paper's and SASRec's original protocol): one sample per user, the loss
  at every non-padding position, the target of position ``p`` being the item at ``p + 1`` (the
  row's target for the last position). It needs a backbone whose ``forward`` ends with
  ``gather_indexes`` over a causal per-position output; :meth:`BareBackbone.sequence_output` takes
  that output by shadowing ``gather_indexes`` on the instance for the call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from recbole.model.abstract_recommender import SequentialRecommender
from torch import nn

from recbole_faerec.model.losses import chunked_cross_entropy
from recbole_faerec.model.registry import get_sequential_model
from recbole_faerec.supported_backbones import TRIMMABLE, check_backbone
from recbole_faerec.text_prior import build_text_prior

LOSS_TYPES = ("CE", "BPR", "BCE")
ALL_POSITION_LOSSES = ("CE", "BCE")


def _all_positions(output: torch.Tensor, gather_index: torch.Tensor) -> torch.Tensor:
    return output


def next_item_targets(
    item_seq: torch.Tensor, item_seq_len: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Target of every position: the next item of the sequence, ``target`` after the last one.

    Padding positions get 0.
    """
    targets = torch.zeros_like(item_seq)
    targets[:, :-1] = item_seq[:, 1:]
    rows = torch.arange(item_seq.size(0), device=item_seq.device)
    targets[rows, item_seq_len - 1] = target
    positions = torch.arange(item_seq.size(1), device=item_seq.device)
    return targets * (positions.unsqueeze(0) < item_seq_len.unsqueeze(1))


class PositionsFromEnd(nn.Module):
    """A backbone's position table indexed back from each sequence's newest item.

    RecBole's transformers pad on the right and number positions from a sequence's oldest item;
    SASRec's original code (and the FAERec authors') pads on the left, so that the newest item
    always has the last position. Under a causal mask the two paddings compute the same thing
    once the positions agree, so this module only shifts each row's position ids by
    ``max_length - length`` (set through :attr:`lengths` before the backbone runs).
    """

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.embedding = embedding
        self.lengths: torch.Tensor | None = None

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        last = self.embedding.num_embeddings - 1
        if self.lengths is None or position_ids.dim() != 2:
            return self.embedding(position_ids)
        if self.lengths.size(0) != position_ids.size(0):
            raise RuntimeError(
                f"PositionsFromEnd: lengths of {self.lengths.size(0)} sequences for a batch of "
                f"{position_ids.size(0)}; call the backbone through the plugin's model"
            )
        shift = (last + 1 - self.lengths).unsqueeze(1)
        return self.embedding((position_ids + shift).clamp(0, last))


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
    check_backbone(name, cls, loss_type, config["train_mode"] or "prefix")
    # RecBole's models read `loss_type` from the config in __init__ (their only input) and raise
    # for anything but CE and BPR, so the config says CE for the call and is restored after.
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


class BareBackbone(SequentialRecommender):
    """The bare backbone named by ``config['backbone']``, trained by the plugin's pipeline."""

    loss_names: tuple[str, ...] = ("rec",)
    #: CE and BPR in ``prefix`` mode are the backbone's own ``calculate_loss``.
    uses_backbone_loss = True

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.loss_type = config["loss_type"]
        self.all_positions = (config["train_mode"] or "prefix") == "all_positions"
        if self.all_positions and self.loss_type not in ALL_POSITION_LOSSES:
            raise ValueError(
                f"loss_type: `train_mode: all_positions` supports {', '.join(ALL_POSITION_LOSSES)}"
                f", not {self.loss_type}."
            )
        self.backbone = build_backbone(config, dataset)
        self.trims_padding = config["backbone"] in TRIMMABLE
        self.positions_from_end = None
        table = getattr(self.backbone, "position_embedding", None)
        if config["positions_from_end"] and isinstance(table, nn.Embedding):
            self.positions_from_end = PositionsFromEnd(table)
            self.backbone.position_embedding = self.positions_from_end
        self.text_prior = build_text_prior(config, dataset)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer at the start of every training epoch."""
        self.epoch = epoch

    def trim_padding(self, interaction) -> None:
        """Cut the batch's sequences to the longest one when the backbone allows it
        (:data:`~recbole_faerec.supported_backbones.TRIMMABLE`): the output is the same, the work
        smaller. With ``positions_from_end`` it also tells the position table the lengths."""
        self._bind_lengths(interaction[self.ITEM_SEQ_LEN])
        if self.trims_padding:
            longest = max(int(interaction[self.ITEM_SEQ_LEN].max()), 1)
            interaction[self.ITEM_SEQ] = interaction[self.ITEM_SEQ][:, :longest]

    def _bind_lengths(self, item_seq_len: torch.Tensor) -> None:
        if self.positions_from_end is not None:
            self.positions_from_end.lengths = item_seq_len

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        self._bind_lengths(item_seq_len)
        return self.backbone(item_seq, item_seq_len)

    def sequence_output(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """The backbone's causal output at every position, shape (batch, length, hidden)."""
        self._bind_lengths(item_seq_len)
        # RecBole's models end forward() with `self.gather_indexes(output, item_seq_len - 1)` and
        # give the per-position output no other way (no flag; the layers before it differ per
        # model): an instance attribute shadows the method for this one call only.
        self.backbone.gather_indexes = _all_positions
        try:
            return self.backbone(item_seq, item_seq_len)
        finally:
            del self.backbone.gather_indexes

    def targets(self, interaction) -> torch.Tensor:
        """Training targets: (batch,) in ``prefix`` mode, (batch, length) in ``all_positions``."""
        target = interaction[self.POS_ITEM_ID]
        if not self.all_positions:
            return target
        return next_item_targets(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], target)

    @property
    def item_table(self) -> nn.Module:
        """The module the backbone embeds and scores items with."""
        return self.backbone.item_embedding

    def target_embedding(self, ids: torch.Tensor) -> torch.Tensor:
        """Embeddings the BCE loss scores targets and negatives against: the item table's."""
        return self.item_table(ids)

    def sample_negatives(self, positives: torch.Tensor) -> torch.Tensor:
        """One negative item per positive, uniform over the catalog, never the positive itself
        nor padding."""
        negatives = torch.randint(1, self.n_items - 1, positives.shape, device=positives.device)
        return negatives + (negatives >= positives).long()

    def prepare_batch(self, interaction) -> None:
        """Trim the padding and add what the loss needs: for ``BCE``, a negative per target."""
        self.trim_padding(interaction)
        if self.loss_type == "BCE":
            targets = self.targets(interaction)
            negatives = self.sample_negatives(targets.clamp(min=1)) * (targets != 0)
            interaction[self.NEG_ITEM_ID] = negatives

    def recommendation_loss(self, interaction) -> torch.Tensor:
        """``L_rec`` averaged over the targets of the batch (every position in all_positions).

        CE and BPR in ``prefix`` mode are the backbone's own losses; BCE uses the batch's
        sampled negatives: ``-log s(h.e+) - log(1 - s(h.e-))``.
        """
        if self.uses_backbone_loss and self.loss_type != "BCE" and not self.all_positions:
            self._bind_lengths(interaction[self.ITEM_SEQ_LEN])
            return self.backbone.calculate_loss(interaction)
        item_seq, item_seq_len = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        targets = self.targets(interaction)
        if self.all_positions:
            mask = targets != 0
            output = self.sequence_output(item_seq, item_seq_len)[mask]
            targets = targets[mask]
        else:
            mask = None
            output = self.forward(item_seq, item_seq_len)
        if self.loss_type == "CE":
            return chunked_cross_entropy(output, self.item_table.weight, targets)
        negatives = interaction[self.NEG_ITEM_ID]
        negatives = negatives[mask] if mask is not None else negatives
        pos_score = (output * self.target_embedding(targets)).sum(-1)
        neg_score = (output * self.target_embedding(negatives)).sum(-1)
        return (F.softplus(-pos_score) + F.softplus(neg_score)).mean()

    def calculate_loss(self, interaction) -> tuple[torch.Tensor, ...]:
        self.prepare_batch(interaction)
        return (self.recommendation_loss(interaction),)

    def predict(self, interaction) -> torch.Tensor:
        """The score of each row's item: its column of :meth:`full_sort_predict`, so that sampled
        and full-sort evaluation rank with one scoring (the model's table and the text prior)."""
        scores = self.full_sort_predict(interaction)
        return scores.gather(1, interaction[self.ITEM_ID].unsqueeze(1)).squeeze(1)

    def item_scores(self, interaction) -> torch.Tensor:
        """The model's own scores of every item for the batch's (trimmed) sequences."""
        return self.backbone.full_sort_predict(interaction)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """The model's scores of every item, plus the text prior's term when it is fitted."""
        self.trim_padding(interaction)
        scores = self.item_scores(interaction)
        if self.text_prior is None:
            return scores
        return self.text_prior(scores, interaction[self.ITEM_SEQ])
