"""The embedding CLI on the full bundled Amazon Beauty: shape, finite values, neighbours, cache.

Prompts are cut at 32 tokens (``--max-length 32``) to keep the default test run short; the
shipped default (64 tokens) is measured by ``benchmarks/embedding_throughput.py``. It embeds
12,101 items (about 90 s on 2 cores), so it is marked ``slow``: ``python -m pytest -m slow``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dataset_prep import embed
from recbole_faerec.data.bundled import materialize_bundled_dataset

DATASET = "amazon-beauty"


@pytest.mark.slow
def test_full_beauty_table_neighbours_and_cached_rerun(tmp_path, capsys):
    materialize_bundled_dataset(DATASET, tmp_path / DATASET)
    argv = ["--data-path", str(tmp_path), "--dataset", DATASET, "--max-length", "32"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert embed.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    path = Path(lines[-1])
    assert "items: 12101" in lines[0]

    with np.load(path, allow_pickle=False) as data:
        tokens, vectors = data["items"], data["embeddings"]
    assert vectors.shape == (12101, 384) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)

    items = pd.read_csv(tmp_path / DATASET / f"{DATASET}.item", sep="\t", dtype=str, quoting=3)
    brand = dict(zip(items["item_id:token"], items["brand:token"].fillna(""), strict=True))
    branded = np.array([brand[t] != "" for t in tokens])
    rng = np.random.default_rng(0)
    queries = rng.choice(np.flatnonzero(branded), 500, replace=False)
    sims = vectors[queries] @ vectors.T
    sims[np.arange(len(queries)), queries] = -np.inf
    nearest = sims.argmax(axis=1)
    same_brand = np.mean(
        [brand[tokens[q]] == brand[tokens[n]] for q, n in zip(queries, nearest, strict=True)]
    )
    random_pairs = np.mean(
        [brand[tokens[q]] == brand[tokens[r]] for q, r in zip(queries, queries[::-1], strict=True)]
    )
    assert same_brand > 0.4 > 5 * random_pairs

    assert embed.main(argv + ["--force"]) == 0
    rerun = capsys.readouterr().out.strip().splitlines()
    assert "computed: 0" in rerun[0] and "cached: 12098" in rerun[0]
    with np.load(Path(rerun[-1]), allow_pickle=False) as again:
        np.testing.assert_array_equal(again["embeddings"], vectors)
