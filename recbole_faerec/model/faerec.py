"""FAERec: fusion and alignment enhancement of a sequential recommender with LLM embeddings.

Reading order follows the paper:

1. **Adaptive gating fusion** (:mod:`.fusion`): the backbone's item table is replaced by a
   :class:`~.fusion.FusedItemEmbedding` that mixes a trainable ID embedding (PCA-initialised)
   with a projected, frozen LLM text embedding through a per-dimension gate. The backbone's
   encoder, loss and scoring code run unchanged on top of it. Training steps compute its products
   and InfoNCE's similarities in bfloat16 where the hardware has it (``step_precision``,
   :mod:`.precision`).
2. **Dual-level alignment** (:mod:`.alignment`): item-level InfoNCE and feature-level Barlow Twins
   (per popularity group) between the ID and LLM views of the distinct items of the batch.
3. **Curriculum** (:mod:`.curriculum`): ``L_align = w(t) L_item + (1 - w(t)) L_feature`` with the
   cosine weight ``w(t)`` of the epoch ``t`` that the trainer passes through :meth:`set_epoch`.
4. **Inference**: items are scored with the equal-weight fusion of the two views
   (``score_table``).

``calculate_loss`` returns ``(L_rec, alpha w L_item, alpha (1 - w) L_feature)``, whose sum is
``L = L_rec + alpha L_align``; RecBole's trainer adds them up and logs each part.
"""

from __future__ import annotations

import torch
from torch import nn

from recbole_faerec.config_checks import check_faerec_settings
from recbole_faerec.model.alignment import feature_alignment_loss, item_alignment_loss
from recbole_faerec.model.bare import BareBackbone
from recbole_faerec.model.curriculum import alignment_weight
from recbole_faerec.model.fusion import FusedItemEmbedding
from recbole_faerec.model.precision import step_dtype


class FAERec(BareBackbone):
    """FAERec around the RecBole sequential model named by ``config['backbone']``."""

    loss_names = ("rec", "item_align", "feature_align")

    def __init__(self, config, dataset) -> None:
        check_faerec_settings(config)
        super().__init__(config, dataset)
        self.alpha = config["alpha"]
        self.tau = config["tau"]
        self.lambd = config["lambda"]
        self.w_min, self.w_max, self.period = config["w_min"], config["w_max"], config["period"]
        self.use_curriculum = config["curriculum"]
        self.use_item_alignment = config["item_alignment"]
        self.use_feature_alignment = config["feature_alignment"]
        self.use_popularity_groups = config["popularity_groups"]
        self.align_max_items = config["align_max_items"]
        self.align_max_negatives = config["align_max_negatives"]

        llm_table = torch.as_tensor(dataset.llm_embeddings, dtype=torch.float32)
        dtype = step_dtype(config["step_precision"], config["device"])
        original = self.backbone.item_embedding
        self.backbone.item_embedding = FusedItemEmbedding(
            llm_table,
            hidden_size=original.embedding_dim,
            dropout=config["projection_dropout"],
            fusion=config["fusion"],
            target_table=config["target_table"],
            score_table=config["score_table"],
            score_norm=self.input_layer_norm(original.embedding_dim),
            extra_rows=original.num_embeddings - llm_table.size(0),
            llm_input_dim=config["llm_input_dim"],
            step_dtype=dtype,
        )
        popularity = torch.as_tensor(dataset.train_item_popularity, dtype=torch.float32)
        self.register_buffer("item_popularity", popularity)

    def input_layer_norm(self, hidden_size: int) -> nn.LayerNorm | None:
        """The backbone's LayerNorm over its input embeddings (``LayerNorm``, as in SASRec), which
        ``score_table: layernorm`` shares as the authors' code does; None when it has none."""
        norm = getattr(self.backbone, "LayerNorm", None)
        if isinstance(norm, nn.LayerNorm) and tuple(norm.normalized_shape) == (hidden_size,):
            return norm
        return None

    @property
    def fusion(self) -> FusedItemEmbedding:
        """The fused item table inside the backbone."""
        return self.backbone.item_embedding

    def target_embedding(self, ids: torch.Tensor) -> torch.Tensor:
        """Targets and BCE negatives are scored against the ``target_table`` of the fusion."""
        return self.fusion.target_embedding(ids)

    def alignment_weight(self) -> float:
        """``w(t)`` for the current epoch, or the schedule's mean when the curriculum is off."""
        if not self.use_curriculum:
            return (self.w_min + self.w_max) / 2.0
        return alignment_weight(self.epoch, self.w_min, self.w_max, self.period)

    def batch_items(self, interaction, negatives: bool = False) -> torch.Tensor:
        """Distinct non-padding items of the batch's sequences and targets (and negatives)."""
        parts = [interaction[self.ITEM_SEQ].flatten(), interaction[self.POS_ITEM_ID].flatten()]
        if negatives and self.NEG_ITEM_ID in interaction:
            parts.append(interaction[self.NEG_ITEM_ID].flatten())
        ids = torch.unique(torch.cat(parts))
        return ids[ids != 0]

    def alignment_items(self, batch_items: torch.Tensor) -> torch.Tensor:
        """The items the alignment losses use: all batch items, or a random subset of them."""
        if self.align_max_items is None or batch_items.numel() <= self.align_max_items:
            return batch_items
        keep = torch.randperm(batch_items.numel(), device=batch_items.device)
        return batch_items[keep[: self.align_max_items]]

    def alignment_losses(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L_item, L_feature)`` on the ID and projected LLM views of distinct ``items``."""
        e_id, e_llm = self.fusion.views(items)
        zero = e_id.new_zeros(())
        l_item = zero
        if self.use_item_alignment:
            l_item = item_alignment_loss(
                e_id, e_llm, self.tau, self.align_max_negatives, self.fusion.step_dtype
            )
        l_feature = zero
        if self.use_feature_alignment:
            popularity = self.item_popularity[items] if self.use_popularity_groups else None
            l_feature = feature_alignment_loss(e_id, e_llm, popularity, self.lambd)
        return l_item, l_feature

    def calculate_loss(self, interaction) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.prepare_batch(interaction)
        step_items = None if self.loss_type == "CE" else self.batch_items(interaction, True)
        with self.fusion.step(step_items):
            l_rec = self.recommendation_loss(interaction)
            items = self.alignment_items(self.batch_items(interaction))
            l_item, l_feature = self.alignment_losses(items)
        w = self.alignment_weight()
        return l_rec, self.alpha * w * l_item, self.alpha * (1.0 - w) * l_feature
