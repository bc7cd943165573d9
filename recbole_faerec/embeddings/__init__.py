"""LLM item embeddings: item prompts, embedding providers, a per-prompt cache and the frozen table.

Public API used by the FAERec dataset class: :func:`resolve_embedding_table` and
:func:`load_embedding_table`; settings live in :class:`EmbeddingSettings`
(``properties/embedding.yaml``).
"""

from recbole_faerec.embeddings.table import (
    EmbeddingSettings,
    build_embedding_table,
    load_embedding_table,
    resolve_embedding_table,
)

__all__ = [
    "EmbeddingSettings",
    "build_embedding_table",
    "load_embedding_table",
    "resolve_embedding_table",
]
