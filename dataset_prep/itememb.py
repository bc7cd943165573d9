"""An LLM table as RecBole's pretrained-vector atomic file (``NAME.itememb``).

RecBole loads pretrained vectors through its atomic-file convention (as KSR's entity vectors): an
extra file with a token field and a ``float_seq`` field, declared in the dataset config::

    additional_feat_suffix: [itememb]
    alias_of_item_id: [iid]
    load_col: {inter: [...], itememb: [iid, item_emb]}
    preload_weight: {iid: item_emb}

``dataset.get_preload_weight('iid')`` then returns one row per internal item id. This is the file
that RecBole's own FAERec (``upstream/``) reads, so that it needs no plugin code at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from recbole_faerec.io import atomic_open

ID_FIELD = "iid"
VECTOR_FIELD = "item_emb"


def write_itememb(
    table_path: str | os.PathLike,
    out: str | os.PathLike,
    id_field: str = ID_FIELD,
    vector_field: str = VECTOR_FIELD,
) -> Path:
    """Write the ``.npz`` LLM table at ``table_path`` as a ``.itememb`` atomic file at ``out``.

    Vectors are written with 9 significant digits, enough to read back the same float32 values.
    """
    with np.load(table_path, allow_pickle=False) as data:
        items, vectors = data["items"].astype(str), data["embeddings"].astype(np.float32)
    out = Path(out)
    with atomic_open(out, "w", encoding="utf-8") as handle:
        handle.write(f"{id_field}:token\t{vector_field}:float_seq\n")
        for item, vector in zip(items, vectors, strict=True):
            handle.write(item + "\t" + " ".join(f"{value:.9g}" for value in vector) + "\n")
    return out
