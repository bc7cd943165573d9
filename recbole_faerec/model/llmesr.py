"""LLM-ESR (Liu et al., NeurIPS 2024): LLM-enhanced sequential recommendation, a baseline of the
FAERec paper, around any RecBole backbone.

Reading order follows its paper and official code (github liuqidong07/LLM-ESR):

1. **Dual-view modelling** (:mod:`.dual_view`): the semantic view (the frozen LLM table through a
   trainable adapter) and the collaborative view (an ID table initialised from the reduced LLM
   table) of the input sequence, optionally cross-attended, are each encoded by the backbone's
   one shared encoder; a user is the concatenation of the two encodings and an item the
   concatenation of its two views, so a score is the sum of the two views' scores.
2. **Retrieval-augmented self-distillation**: each user's ``llmesr_similar_users`` most similar
   users, retrieved once per dataset by the LLM embeddings of the users' training items
   (:mod:`recbole_faerec.data.similar_users`), are encoded by the same model; the mean of their
   representations, without gradient, teaches the user's (``llmesr_distill_loss``). The official
   code encodes them at every step (``llmesr_teacher_refresh: step``); ``epoch`` encodes every user
   once at the start of each epoch, without dropout, and takes the teachers from those.
3. **Item-level regularisation** (off in the official runs): a soft contrastive loss between the
   two views of the batch's input items.

``calculate_loss`` returns ``(L_rec, alpha L_distill, beta L_reg)``; RecBole's trainer adds them
up and the plugin's trainer logs each part.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recbole_faerec.config_checks import check_llmesr_settings
from recbole_faerec.model.bare import BareBackbone
from recbole_faerec.model.dual_view import DualViewItemEmbedding

#: Similar users encoded together when the teachers are built (sorted by sequence length).
TEACHER_CHUNK = 512


def soft_contrastive_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """LLM-ESR's contrastive loss between paired rows of ``x`` and ``y`` (temperature 1).

    The logits ``x y^T`` are matched, in both directions, to soft targets
    ``softmax((x x^T + y y^T) / 2)`` row by row; the loss is the mean over rows of the two
    cross-entropies' average.
    """
    logits = x @ y.T
    targets = F.softmax((x @ x.T + y @ y.T) / 2, dim=-1)
    x_loss = -(targets * F.log_softmax(logits, dim=-1)).sum(-1)
    y_loss = -(targets.T * F.log_softmax(logits.T, dim=-1)).sum(-1)
    return ((x_loss + y_loss) / 2).mean()


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, kind: str) -> torch.Tensor:
    """``mse`` (the official ``kd``: mean squared error over every entry) or ``contrastive``
    (the official ``cl``: :func:`soft_contrastive_loss`) between users and their teachers."""
    if kind == "mse":
        return F.mse_loss(student, teacher)
    return soft_contrastive_loss(student, teacher)


class LLMESR(BareBackbone):
    """LLM-ESR around the RecBole sequential model named by ``config['backbone']``."""

    loss_names = ("rec", "distill", "item_reg")
    uses_backbone_loss = False

    def __init__(self, config, dataset) -> None:
        check_llmesr_settings(config)
        super().__init__(config, dataset)
        self.distill_weight = config["llmesr_distill_weight"]
        self.distill_kind = config["llmesr_distill_loss"]
        self.item_reg_weight = config["llmesr_item_reg_weight"]
        self.teacher_refresh = config["llmesr_teacher_refresh"]
        self.user_representations: torch.Tensor | None = None

        llm_table = torch.as_tensor(dataset.llm_embeddings, dtype=torch.float32)
        original = self.backbone.item_embedding
        if original.num_embeddings != llm_table.size(0):
            extra = original.num_embeddings - llm_table.size(0)
            raise ValueError(
                f"backbone: '{config['backbone']}' keeps {extra} rows beyond the items in its item "
                "table (a mask token); LLM-ESR wraps backbones whose table holds the items only "
                "(e.g. SASRec, GRU4Rec, FMLPRec, LRURec)."
            )
        self.backbone.item_embedding = DualViewItemEmbedding(
            llm_table, original.embedding_dim, config["llmesr_cross_attention"]
        )
        # Retrieval: each user's similar users, and every user's training sequence to encode them.
        # Training-only and rebuilt from the dataset, so they stay out of the checkpoint.
        rows = dataset.longest_prefixes().inter_feat
        users = rows[self.USER_ID]
        sequences = torch.zeros(dataset.user_num, self.max_seq_length, dtype=torch.long)
        lengths = torch.ones(dataset.user_num, dtype=torch.long)
        sequences[users] = rows[self.ITEM_SEQ]
        lengths[users] = rows[self.ITEM_SEQ_LEN]
        neighbours = torch.as_tensor(dataset.similar_users, dtype=torch.long)
        self.register_buffer("user_sequences", sequences, persistent=False)
        self.register_buffer("user_lengths", lengths, persistent=False)
        self.register_buffer("similar_users", neighbours, persistent=False)

    @property
    def views(self) -> DualViewItemEmbedding:
        """The dual-view item table inside the backbone."""
        return self.backbone.item_embedding

    # -- 1. dual-view modelling ---------------------------------------------------------------
    def _encode_views(self, item_seq: torch.Tensor, encode) -> torch.Tensor:
        """``[encode(ID view); encode(LLM view)]`` of ``item_seq`` through the shared encoder."""
        outputs = []
        for sequence in self.views.sequence_views(item_seq):
            with self.views.feeding(sequence):
                outputs.append(encode())
        return torch.cat(outputs, dim=-1)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """The user representation, (batch, 2 x hidden)."""
        parent = super().forward
        return self._encode_views(item_seq, lambda: parent(item_seq, item_seq_len))

    def sequence_output(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """The representation at every position, (batch, length, 2 x hidden)."""
        parent = super().sequence_output
        return self._encode_views(item_seq, lambda: parent(item_seq, item_seq_len))

    def target_embedding(self, ids: torch.Tensor) -> torch.Tensor:
        return self.views.target_embedding(ids)

    def item_scores(self, interaction) -> torch.Tensor:
        """Scores of every item: the user's two encodings against the items' two views."""
        users = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return users @ self.views.weight.T

    # -- 2. retrieval-augmented self-distillation ----------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """With ``llmesr_teacher_refresh: epoch``, encode every user for this epoch's teachers."""
        super().set_epoch(epoch)
        if self.teacher_refresh == "epoch" and self.distill_weight:
            self.refresh_user_representations()

    def refresh_user_representations(self) -> None:
        """Every user's representation from its training sequence, without dropout or gradient."""
        training = self.training
        self.eval()
        with torch.no_grad():
            everyone = torch.arange(self.user_sequences.size(0), device=self.user_sequences.device)
            self.user_representations = self.encode_users(everyone)
        self.train(training)

    def teacher(self, users: torch.Tensor) -> torch.Tensor:
        """Mean representation of each user's similar users, without gradient."""
        neighbours = self.similar_users[users]
        if self.teacher_refresh == "epoch":
            if self.user_representations is None:
                self.refresh_user_representations()
            return self.user_representations[neighbours].mean(dim=1)
        distinct, index = torch.unique(neighbours, return_inverse=True)
        with torch.no_grad():
            encoded = self.encode_users(distinct)
        return encoded[index].mean(dim=1)

    def encode_users(self, users: torch.Tensor) -> torch.Tensor:
        """The representation of each of ``users`` from its training sequence, in chunks of
        :data:`TEACHER_CHUNK` users by increasing length (every user at the start of an epoch
        stays within memory). A backbone that allows it (:attr:`trims_padding`) cuts each chunk to
        its longest sequence: the same output, far less work than padding all to the longest."""
        sequences, lengths = self.user_sequences[users], self.user_lengths[users]
        order = torch.argsort(lengths)
        encoded = torch.empty(users.numel(), 2 * self.views.embedding_dim, device=users.device)
        for rows in order.split(TEACHER_CHUNK):
            longest = int(lengths[rows].max()) if self.trims_padding else sequences.size(1)
            encoded[rows] = self.forward(sequences[rows, :longest], lengths[rows])
        return encoded

    def self_distillation_loss(self, interaction) -> torch.Tensor:
        """The distillation loss between the batch users and their teachers."""
        student = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return distillation_loss(
            student, self.teacher(interaction[self.USER_ID]), self.distill_kind
        )

    # -- 3. item-level regularisation ---------------------------------------------------------
    def item_regularisation_loss(self, interaction) -> torch.Tensor:
        """:func:`soft_contrastive_loss` of the LLM and ID views of the distinct input items."""
        items = torch.unique(interaction[self.ITEM_SEQ])
        e_id, e_llm = self.views.views(items[items != 0])
        return soft_contrastive_loss(e_llm, e_id)

    def calculate_loss(self, interaction) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.prepare_batch(interaction)
        l_rec = self.recommendation_loss(interaction)
        zero = l_rec.new_zeros(())
        l_distill = self.self_distillation_loss(interaction) if self.distill_weight else zero
        l_reg = self.item_regularisation_loss(interaction) if self.item_reg_weight else zero
        return l_rec, self.distill_weight * l_distill, self.item_reg_weight * l_reg
