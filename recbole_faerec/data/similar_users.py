"""Similar users for LLM-ESR's retrieval-augmented self-distillation, retrieved once per dataset.

Each user's training items (never the validation or test item) make a prompt whose LLM embedding
(:mod:`recbole_faerec.embeddings.users`) is compared by cosine with every other user's; the
``llmesr_similar_users`` most similar users, the user itself left out, are the user's neighbours,
as in LLM-ESR's official retrieval. The dataset computes them once, when it is built.
"""

from __future__ import annotations

from logging import getLogger

import numpy as np
import torch
import torch.nn.functional as F

from recbole_faerec.embeddings.users import build_user_table

#: Users compared with all others at a time.
CHUNK_USERS = 4096


def training_histories(train_split) -> list[list[int]]:
    """Each internal user id's training items (internal item ids), oldest first, read from the
    training split's prefix rows (in RecBole's order: by user, then time)."""
    histories: list[list[int]] = [[] for _ in range(train_split.user_num)]
    feat = train_split.inter_feat
    config = train_split.config
    users = feat[train_split.uid_field].tolist()
    targets = feat[train_split.iid_field].tolist()
    lengths = feat[train_split.item_list_length_field].tolist()
    firsts = feat[train_split.iid_field + config["LIST_SUFFIX"]][:, 0].tolist()
    for user, target, length, first in zip(users, targets, lengths, firsts, strict=True):
        if length == 1:
            histories[user].append(first)
        histories[user].append(target)
    return histories


def most_similar(vectors: torch.Tensor, k: int) -> torch.Tensor:
    """``(users, k)``: each row's ``k`` rows of highest cosine similarity, itself and zero rows
    (users without training items, padding) excluded, most similar first."""
    unit = F.normalize(vectors.float(), dim=-1)
    empty = unit.abs().sum(dim=-1) == 0
    k = min(k, int((~empty).sum()) - 1)
    if k < 1:
        raise ValueError(
            "llmesr_similar_users: LLM-ESR needs at least two users with training items; fix: "
            "use a dataset with more users"
        )
    chunks = []
    for start in range(0, unit.size(0), CHUNK_USERS):
        scores = unit[start : start + CHUNK_USERS] @ unit.T
        rows = torch.arange(scores.size(0))
        scores[rows, rows + start] = -torch.inf
        scores[:, empty] = -torch.inf
        chunks.append(scores.topk(k, dim=1).indices)
    return torch.cat(chunks)


def similar_users(config, train_split) -> np.ndarray:
    """The ``llmesr_similar_users`` neighbours of every internal user id, from LLM embeddings of
    the users' training items (:func:`training_histories`)."""
    item_tokens = train_split.field2id_token[train_split.iid_field]
    user_tokens = train_split.field2id_token[train_split.uid_field]
    histories = [[item_tokens[i] for i in items] for items in training_histories(train_split)]
    table = build_user_table(config, user_tokens, histories, show_progress=config["show_progress"])
    neighbours = most_similar(torch.from_numpy(table), config["llmesr_similar_users"])
    getLogger().info(f"Similar users: {neighbours.size(1)} per user from {table.shape} embeddings")
    return neighbours.numpy()
