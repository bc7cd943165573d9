"""Embedding throughput of the default model on the full Amazon Beauty prompts, then a cached rerun.

    python benchmarks/embedding_throughput.py [--data-path DIR] [--neighbours N] [--half]

Materialises the bundled ``amazon-beauty`` into DIR (default: a temporary folder), builds its
table with an empty per-prompt cache (timed), builds it again from the cache (timed), and prints
a few items with their nearest neighbours as a sanity check. ``--half`` runs the encoder with
``embedding_half: True`` (bfloat16 autocast on a CPU with native bfloat16, float16 on CUDA).
The last line is ``items_per_s=<cold throughput> cached_rerun_s=<seconds>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recbole_faerec.data.bundled import materialize_bundled_dataset
from recbole_faerec.embeddings.table import EmbeddingSettings, build_embedding_table

DATASET = "amazon-beauty"


def nearest_neighbours(table: Path, item_file: Path, n_items: int, k: int = 3) -> list[str]:
    """Title of ``n_items`` evenly spaced items followed by the titles of their top-k cosines."""
    data = np.load(table, allow_pickle=False)
    tokens, vectors = data["items"], data["embeddings"]
    titles = pd.read_csv(item_file, sep="\t", dtype=str, quoting=3).fillna("")
    titles.columns = [c.split(":")[0] for c in titles.columns]
    title_of = dict(zip(titles["item_id"], titles["title"], strict=True))
    lines = []
    for row in np.linspace(0, len(tokens) - 1, n_items).astype(int):
        sims = vectors @ vectors[row]
        sims[row] = -np.inf
        best = np.argsort(-sims)[:k]
        lines.append(f"{title_of[tokens[row]][:70]}")
        lines += [f"    {sims[b]:.3f}  {title_of[tokens[b]][:70]}" for b in best]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-path", help="data_path to use (default: a temporary folder)")
    parser.add_argument("--neighbours", type=int, default=4, help="items to show neighbours of")
    parser.add_argument("--half", action="store_true", help="embedding_half: True")
    args = parser.parse_args()
    root = Path(args.data_path or tempfile.mkdtemp(prefix="faerec-embed-bench."))
    dataset_dir = root / DATASET
    materialize_bundled_dataset(DATASET, dataset_dir)
    cache = Path(tempfile.mkdtemp(prefix="faerec-embed-cache."))
    settings = dataclasses.replace(EmbeddingSettings(), cache_dir=str(cache), half=args.half)

    cold = build_embedding_table(settings, dataset_dir, DATASET, force=True)
    start = time.perf_counter()
    warm = build_embedding_table(settings, dataset_dir, DATASET, force=True)
    cached_seconds = time.perf_counter() - start
    rate = cold.stats.computed / cold.seconds

    print(f"table: {cold.path}  items: {cold.items}  dim: {cold.dim}")
    print(f"cold build: {cold.stats.computed} prompts computed in {cold.seconds:.1f} s")
    print(f"cached rerun: {warm.stats.computed} computed, {warm.stats.cached} cached")
    print(
        "\n".join(nearest_neighbours(cold.path, dataset_dir / f"{DATASET}.item", args.neighbours))
    )
    print(f"items_per_s={rate:.1f} cached_rerun_s={cached_seconds:.2f}")


if __name__ == "__main__":
    main()
