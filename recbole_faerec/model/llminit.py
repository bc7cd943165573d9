"""LLMInit: the backbone with its ID item table initialised from the LLM table.

A baseline of the FAERec paper (Table 2). The LLM table is reduced to the backbone's embedding
size by the same PCA as FAERec's ID view (:func:`~.fusion.pca_initialisation`); the backbone is
then trained exactly as the bare backbone. No LLM view is kept for training or scoring.
"""

from __future__ import annotations

import torch

from recbole_faerec.model.bare import BareBackbone
from recbole_faerec.model.fusion import pca_initialisation


class LLMInit(BareBackbone):
    """The bare backbone of ``config['backbone']`` with a PCA-initialised item table."""

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        llm_table = torch.as_tensor(dataset.llm_embeddings, dtype=torch.float32)
        table = self.item_table.weight
        with torch.no_grad():
            table[: llm_table.size(0)] = pca_initialisation(llm_table, table.size(1))
