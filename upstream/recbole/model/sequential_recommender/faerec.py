# -*- coding: utf-8 -*-
# @Time   : 2026/11/24
# @Author : recbole-faerec contributors

r"""
FAERec
################################################

Reference:
    "Fusion and Alignment Enhancement with Large Language Models for Tail-item Sequential
    Recommendation." In SIGIR 2026.

Reference code:
    https://github.com/ZhifuWei/FAERec

Not to be confused with FEARec ("Frequency Enhanced Hybrid Attention Network for Sequential
Recommendation"), which RecBole already has.

FAERec improves the item representation of a sequential recommender, here SASRec:

1. Adaptive gating fusion: every item has a trainable ID embedding (initialised with a PCA of the
   LLM embeddings) and a frozen LLM text embedding, projected to the hidden size by a two-layer
   MLP. A per-dimension gate ``g = sigmoid(W2 (W1 [e_id; e_llm] + b1) + b2)`` mixes them:
   ``f = g * e_id + (1 - g) * e_llm``. ``f`` is the item input of the encoder and the table the
   training targets are scored against; evaluation scores with ``LayerNorm(e_id + e_llm)``
   (SASRec's input LayerNorm, as the authors' code does).
2. Dual-level alignment of the two views over the distinct items of a batch: an item-level
   InfoNCE (cosine similarity, temperature ``tau``) and a feature-level Barlow Twins loss,
   computed separately for the items above and at-or-below the batch's median training
   popularity.
3. Curriculum: ``L = L_rec + alpha * (w(t) L_item + (1 - w(t)) L_feature)`` with
   ``w(t) = (w_max - w_min) (1 + cos(2 pi t / T)) / 2 + w_min`` at epoch ``t``.

The LLM embeddings are pretrained vectors loaded with RecBole's atomic-file convention (as KSR's
entity vectors): a ``.itememb`` file with an item token field and a ``float_seq`` vector field,
declared in the dataset config with ``additional_feat_suffix``, ``alias_of_item_id``,
``load_col`` and ``preload_weight``.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from recbole.model.abstract_recommender import SequentialRecommender
from recbole.model.layers import TransformerEncoder
from recbole.model.loss import BPRLoss


class FAERec(SequentialRecommender):
    r"""FAERec on SASRec's self-attentive encoder, with RecBole's CE and BPR losses."""

    def __init__(self, config, dataset):
        super(FAERec, self).__init__(config, dataset)

        # load parameters info
        self.n_layers = config["n_layers"]
        self.n_heads = config["n_heads"]
        self.hidden_size = config["hidden_size"]
        self.inner_size = config["inner_size"]
        self.hidden_dropout_prob = config["hidden_dropout_prob"]
        self.attn_dropout_prob = config["attn_dropout_prob"]
        self.hidden_act = config["hidden_act"]
        self.layer_norm_eps = config["layer_norm_eps"]
        self.initializer_range = config["initializer_range"]
        self.loss_type = config["loss_type"]

        self.alpha = config["alpha"]
        self.tau = config["tau"]
        self.lambd = config["lambda"]
        self.w_min = config["w_min"]
        self.w_max = config["w_max"]
        self.period = config["period"]
        self.projection_dropout = config["projection_dropout"]

        # define layers and loss
        self.position_embedding = nn.Embedding(self.max_seq_length, self.hidden_size)
        self.trm_encoder = TransformerEncoder(
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            hidden_size=self.hidden_size,
            inner_size=self.inner_size,
            hidden_dropout_prob=self.hidden_dropout_prob,
            attn_dropout_prob=self.attn_dropout_prob,
            hidden_act=self.hidden_act,
            layer_norm_eps=self.layer_norm_eps,
        )
        self.LayerNorm = nn.LayerNorm(self.hidden_size, eps=self.layer_norm_eps)
        self.dropout = nn.Dropout(self.hidden_dropout_prob)

        if self.loss_type == "BPR":
            self.loss_fct = BPRLoss()
        elif self.loss_type == "CE":
            self.loss_fct = nn.CrossEntropyLoss()
        else:
            raise NotImplementedError("Make sure 'loss_type' in ['BPR', 'CE']!")

        # parameters initialization of the SASRec part
        self.apply(self._init_weights)

        # the two item views and their fusion (PyTorch's default initialisation)
        llm_table = torch.as_tensor(
            self._llm_table(config, dataset), dtype=torch.float32
        )
        llm_dim = llm_table.size(1)
        self.register_buffer("llm_table", llm_table)
        self.id_embedding = nn.Embedding(self.n_items, self.hidden_size, padding_idx=0)
        self.id_embedding.weight.data.copy_(self._pca(llm_table, self.hidden_size))
        self.projection = nn.Sequential(
            nn.Linear(llm_dim, llm_dim // 2),
            nn.GELU(),
            nn.Dropout(self.projection_dropout),
            nn.Linear(llm_dim // 2, self.hidden_size),
        )
        self.gate_w1 = nn.Linear(2 * self.hidden_size, 2 * self.hidden_size)
        self.gate_w2 = nn.Linear(2 * self.hidden_size, self.hidden_size)

        self.register_buffer("item_popularity", self._training_popularity(dataset))
        # the curriculum's epoch: RecBole's trainer calls ``train()`` once per training epoch
        self.register_buffer("epoch", torch.tensor(-1, dtype=torch.long))

    def _init_weights(self, module):
        """Initialize the weights"""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=self.initializer_range)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    def _llm_table(self, config, dataset):
        """The preloaded LLM vectors of the items (row ``i`` is item ``i``, row 0 padding)."""
        item_fields = [dataset.iid_field] + list(config["alias_of_item_id"] or [])
        preload = config["preload_weight"] or {}
        fields = [field for field in preload if field in item_fields]
        if not fields:
            raise ValueError(
                "FAERec needs the items' LLM embeddings: add a `.itememb` atomic file and set "
                "`additional_feat_suffix`, `alias_of_item_id`, `load_col` and `preload_weight` "
                "in the dataset config (see the FAERec page of the model docs)."
            )
        table = dataset.get_preload_weight(fields[0])
        missing = int((abs(table[1:]).sum(axis=1) == 0).sum())
        if missing:
            raise ValueError(
                f"FAERec: {missing} items have no vector in the `{preload[fields[0]]}` field; "
                "every item of the dataset needs one."
            )
        return table

    @staticmethod
    def _pca(llm_table, dim):
        """PCA scores of the LLM table as the initial ID embeddings (row 0 stays zero)."""
        items = llm_table[1:].double()
        centred = items - items.mean(dim=0)
        _, _, vh = torch.linalg.svd(centred, full_matrices=False)
        scores = centred @ vh[:dim].T
        if scores.size(1) < dim:
            extra = torch.randn(
                scores.size(0), dim - scores.size(1), dtype=scores.dtype
            )
            scores = torch.cat([scores, extra * scores.std()], dim=1)
        table = torch.zeros(llm_table.size(0), dim)
        table[1:] = scores.float()
        return table

    def _training_popularity(self, dataset):
        """Interactions per item in the training split: every row's target, plus the first item
        of each user (the sequence of the row of length 1)."""
        targets = dataset.inter_feat[self.POS_ITEM_ID]
        lengths = dataset.inter_feat[self.ITEM_SEQ_LEN]
        firsts = dataset.inter_feat[self.ITEM_SEQ][lengths == 1, 0]
        items = torch.cat([targets, firsts])
        return torch.bincount(items, minlength=self.n_items).float()

    def train(self, mode=True):
        if mode:
            self.epoch += 1
        return super(FAERec, self).train(mode)

    # -- item representation ---------------------------------------------------------------------
    def item_views(self):
        """ID and projected LLM embeddings of all items; the padding row is zero."""
        keep = torch.ones(self.n_items, 1, device=self.llm_table.device)
        keep[0] = 0.0
        return self.id_embedding.weight * keep, self.projection(self.llm_table) * keep

    def fuse(self, e_id, e_llm):
        """Adaptive gating fusion ``f = g * e_id + (1 - g) * e_llm``."""
        gate = torch.sigmoid(
            self.gate_w2(self.gate_w1(torch.cat([e_id, e_llm], dim=-1)))
        )
        return gate * e_id + (1.0 - gate) * e_llm

    def item_tables(self):
        """``(input table, scoring table)``: fused in training; fused and
        ``LayerNorm(e_id + e_llm)`` in evaluation."""
        e_id, e_llm = self.item_views()
        fused = self.fuse(e_id, e_llm)
        return fused, (fused if self.training else self.LayerNorm(e_id + e_llm))

    # -- sequence encoder (SASRec) ---------------------------------------------------------------
    def forward(self, item_seq, item_seq_len, item_table):
        position_ids = torch.arange(
            item_seq.size(1), dtype=torch.long, device=item_seq.device
        )
        position_ids = position_ids.unsqueeze(0).expand_as(item_seq)
        position_embedding = self.position_embedding(position_ids)

        item_emb = item_table[item_seq]
        input_emb = item_emb + position_embedding
        input_emb = self.LayerNorm(input_emb)
        input_emb = self.dropout(input_emb)

        extended_attention_mask = self.get_attention_mask(item_seq)

        trm_output = self.trm_encoder(
            input_emb, extended_attention_mask, output_all_encoded_layers=True
        )
        output = trm_output[-1]
        output = self.gather_indexes(output, item_seq_len - 1)
        return output  # [B H]

    # -- alignment -------------------------------------------------------------------------------
    def item_alignment_loss(self, e_id, e_llm):
        """InfoNCE from each item's ID embedding to its LLM embedding, other items as negatives."""
        logits = F.normalize(e_id, dim=-1) @ F.normalize(e_llm, dim=-1).T / self.tau
        labels = torch.arange(e_id.size(0), device=e_id.device)
        return F.cross_entropy(logits, labels)

    def barlow_twins_loss(self, e_id, e_llm, eps=1e-5):
        """``sum (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2`` of the standardised views."""

        def standardise(x):
            return (x - x.mean(dim=0)) / torch.sqrt(x.var(dim=0, unbiased=False) + eps)

        corr = standardise(e_id).T @ standardise(e_llm) / e_id.size(0)
        diagonal = torch.diagonal(corr)
        on_diag = (1.0 - diagonal).pow(2).sum()
        off_diag = corr.pow(2).sum() - diagonal.pow(2).sum()
        return on_diag + self.lambd * off_diag

    def feature_alignment_loss(self, e_id, e_llm, popularity):
        """Barlow Twins for the items above the batch's median popularity, plus the others."""
        high = popularity > popularity.median()
        loss = e_id.new_zeros(())
        for group in (high, ~high):
            if int(group.sum()) >= 2:
                loss = loss + self.barlow_twins_loss(e_id[group], e_llm[group])
        return loss

    def alignment_weight(self):
        """``w(t)`` of the item-level loss at the current epoch."""
        t = max(int(self.epoch), 0)
        cosine = (1.0 + math.cos(2.0 * math.pi * t / self.period)) / 2.0
        return (self.w_max - self.w_min) * cosine + self.w_min

    def alignment_losses(self, interaction):
        """``(L_item, L_feature)`` over the distinct items of the batch's sequences and targets."""
        items = torch.cat(
            [
                interaction[self.ITEM_SEQ].flatten(),
                interaction[self.POS_ITEM_ID].flatten(),
            ]
        )
        items = torch.unique(items)
        items = items[items != 0]
        e_id = self.id_embedding(items)
        e_llm = self.projection(self.llm_table[items])
        l_item = self.item_alignment_loss(e_id, e_llm)
        l_feature = self.feature_alignment_loss(
            e_id, e_llm, self.item_popularity[items]
        )
        return l_item, l_feature

    # -- RecBole interface -----------------------------------------------------------------------
    def calculate_loss(self, interaction):
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        input_table, target_table = self.item_tables()
        seq_output = self.forward(item_seq, item_seq_len, input_table)
        pos_items = interaction[self.POS_ITEM_ID]
        if self.loss_type == "BPR":
            neg_items = interaction[self.NEG_ITEM_ID]
            pos_score = torch.sum(seq_output * target_table[pos_items], dim=-1)  # [B]
            neg_score = torch.sum(seq_output * target_table[neg_items], dim=-1)  # [B]
            rec_loss = self.loss_fct(pos_score, neg_score)
        else:  # self.loss_type = 'CE'
            logits = torch.matmul(seq_output, target_table.transpose(0, 1))
            rec_loss = self.loss_fct(logits, pos_items)
        l_item, l_feature = self.alignment_losses(interaction)
        w = self.alignment_weight()
        return rec_loss + self.alpha * (w * l_item + (1.0 - w) * l_feature)

    def predict(self, interaction):
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        test_item = interaction[self.ITEM_ID]
        input_table, score_table = self.item_tables()
        seq_output = self.forward(item_seq, item_seq_len, input_table)
        test_item_emb = score_table[test_item]
        scores = torch.mul(seq_output, test_item_emb).sum(dim=1)  # [B]
        return scores

    def full_sort_predict(self, interaction):
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        input_table, score_table = self.item_tables()
        seq_output = self.forward(item_seq, item_seq_len, input_table)
        scores = torch.matmul(seq_output, score_table.transpose(0, 1))  # [B n_items]
        return scores
