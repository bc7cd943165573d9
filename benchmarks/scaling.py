"""How FAERec's cost grows with the catalog, on synthetic catalogs (one process per measurement).

    python benchmarks/scaling.py [--items 10000 100000 1000000] [--llm-dims 384 1536]
        [--steps 5] [--users 1000] [--eval-batch 256] [--out scaling.png]

For every catalog size and LLM dimension, the bare SASRec and FAERec(SASRec) are built with the
paper protocol's settings (hidden 128, BCE with one sampled negative per position, all positions,
batches of 256 sequences of up to 50 items whose lengths follow Beauty's: most users have fewer
than 10 items). Each measurement runs in a fresh process, so that its peak memory (max RSS) is its
own. Printed per size: the training step time of both models and their ratio, the peak memory of
both, the full-sort evaluation time per 1,000 users, and the time FAERec takes to build its
evaluation table (projection and fusion of every item); a PNG plot of the same figures is written.
With ``text_prior: True`` (the default) both models score with the text prior on (its whitened
item vectors built from the synthetic LLM table, weight :data:`PRIOR_WEIGHT`; the transition fit
is not timed here, see ``benchmarks/overhead.py``), and ``prior_vectors_s`` is the time its item
vectors take. The last line is ``max_step_ratio=<FAERec / bare, the largest over all sizes>``;
the exit code is 1 when any measurement failed.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BATCH_USERS = 256
MAX_LENGTH = 50
#: The text prior's weight while scoring (a typical choice on the bundled validation splits).
PRIOR_WEIGHT = 12.0


class SyntheticCatalog:
    """What the models read from a RecBole dataset: the item count, a frozen LLM table (FAERec
    and the text prior) and the training popularity (Zipf-like, as real catalogs)."""

    def __init__(self, n_items: int, llm_dim: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.item_num = n_items + 1
        self.llm_embeddings = rng.standard_normal((self.item_num, llm_dim), dtype=np.float32)
        self.llm_embeddings[0] = 0.0
        ranks = np.arange(1, self.item_num, dtype=np.float64)
        popularity = np.zeros(self.item_num)
        popularity[1:] = np.maximum(1.0, 2000.0 / ranks)
        self.train_item_popularity = popularity

    def num(self, field: str) -> int:
        return self.item_num


def _lengths(rng: np.random.Generator, users: int) -> np.ndarray:
    """Sequence lengths shaped like Beauty's (median about 6, a long tail up to 50)."""
    return np.clip(rng.geometric(1 / 8, size=users) + 3, 1, MAX_LENGTH)


def _batch(model, catalog: SyntheticCatalog, rng: np.random.Generator, users: int):
    import torch
    from recbole.data.interaction import Interaction

    lengths = _lengths(rng, users)
    items = rng.integers(1, catalog.item_num, size=(users, MAX_LENGTH))
    items[np.arange(MAX_LENGTH)[None, :] >= lengths[:, None]] = 0
    return Interaction(
        {
            model.ITEM_SEQ: torch.as_tensor(items),
            model.ITEM_SEQ_LEN: torch.as_tensor(lengths),
            model.POS_ITEM_ID: torch.as_tensor(rng.integers(1, catalog.item_num, size=users)),
        }
    )


def measure(n_items: int, llm_dim: int, faerec: bool, steps: int, users: int, eval_batch: int):
    """One model on one catalog: step time, eval time per 1,000 users, table time, peak RSS."""
    import torch

    from recbole_faerec.config import build_config
    from recbole_faerec.model.registry import model_class
    from recbole_faerec.text_prior.prior import whitened_text_vectors

    settings = {
        "loss_type": "BCE",
        "train_mode": "all_positions",
        "MAX_ITEM_LIST_LENGTH": MAX_LENGTH,
        "show_progress": False,
        "state": "WARNING",
    }
    config = build_config("SASRec", "amazon-beauty", config_dict=settings, base=not faerec)
    catalog = SyntheticCatalog(n_items, llm_dim)
    model = model_class(config)(config, catalog)
    prior_seconds = None
    if model.text_prior is not None:
        start = time.perf_counter()
        vectors = whitened_text_vectors(
            torch.as_tensor(catalog.llm_embeddings),
            model.text_prior.item_vectors.size(1),
            config["text_prior_shrinkage"],
        )
        model.text_prior.item_vectors.copy_(vectors)
        prior_seconds = time.perf_counter() - start
        model.text_prior.weight.fill_(PRIOR_WEIGHT)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(1)
    model.train()
    step_times = []
    for _ in range(steps + 1):
        batch = _batch(model, catalog, rng, BATCH_USERS)
        start = time.perf_counter()
        optimizer.zero_grad()
        sum(model.calculate_loss(batch)).backward()
        optimizer.step()
        step_times.append(time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        start = time.perf_counter()
        _ = model.backbone.item_embedding.weight
        table_seconds = time.perf_counter() - start
        start = time.perf_counter()
        for first in range(0, users, eval_batch):
            model.full_sort_predict(_batch(model, catalog, rng, min(eval_batch, users - first)))
        eval_seconds = (time.perf_counter() - start) * 1000 / users
    return {
        "step_s": statistics.median(step_times[1:]),
        "eval_s_per_1000_users": eval_seconds,
        "table_s": table_seconds,
        "prior_vectors_s": prior_seconds,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def _run_worker(args, n_items: int, llm_dim: int, faerec: bool) -> dict:
    command = [sys.executable, __file__, "--worker", f"--items={n_items}"]
    command += [f"--llm-dims={llm_dim}", f"--steps={args.steps}", f"--users={args.users}"]
    command += [f"--eval-batch={args.eval_batch}"] + (["--faerec"] if faerec else [])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("step_s", "training step (s)"),
        ("peak_rss_gb", "peak memory (GB)"),
        ("eval_s_per_1000_users", "full-sort eval (s / 1,000 users)"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(14, 4))
    bare_dim = min(row["llm_dim"] for row in rows)
    series = [("bare SASRec", "bare", [row for row in rows if row["llm_dim"] == bare_dim])]
    for llm_dim in sorted({row["llm_dim"] for row in rows}):
        same_dim = [row for row in rows if row["llm_dim"] == llm_dim]
        series.append((f"FAERec, LLM dim {llm_dim}", "FAERec", same_dim))
    for ax, (key, title) in zip(axes, panels, strict=True):
        for label, model, chosen in series:
            points = [(row["items"], row[model][key]) for row in chosen if key in row[model]]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("items")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--llm-dims", type=int, nargs="+", default=[384, 1536])
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (+1 warm-up)")
    parser.add_argument("--users", type=int, default=1000, help="users scored in the eval timing")
    parser.add_argument("--eval-batch", type=int, default=256, help="users per full-sort batch")
    parser.add_argument("--out", default="scaling.png", help="plot file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--faerec", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        figures = measure(
            args.items[0], args.llm_dims[0], args.faerec, args.steps, args.users, args.eval_batch
        )
        print(json.dumps(figures))
        return
    rows = []
    for n_items in args.items:
        bare = _run_worker(args, n_items, args.llm_dims[0], faerec=False)
        for llm_dim in args.llm_dims:
            faerec = _run_worker(args, n_items, llm_dim, faerec=True)
            rows.append({"items": n_items, "llm_dim": llm_dim, "bare": bare, "FAERec": faerec})
            if "error" in bare or "error" in faerec:
                print(
                    f"items={n_items} llm_dim={llm_dim} error: {bare.get('error') or ''} "
                    f"{faerec.get('error') or ''}"
                )
                continue
            ratio = faerec["step_s"] / bare["step_s"]
            print(
                f"items={n_items} llm_dim={llm_dim} step_ratio={ratio:.2f} "
                f"step_s bare={bare['step_s']:.3f} faerec={faerec['step_s']:.3f} "
                f"peak_gb bare={bare['peak_rss_gb']:.2f} faerec={faerec['peak_rss_gb']:.2f} "
                f"eval_s_per_1000 bare={bare['eval_s_per_1000_users']:.2f} "
                f"faerec={faerec['eval_s_per_1000_users']:.2f} "
                f"table_s={faerec['table_s']:.2f}",
                flush=True,
            )
    _plot(rows, Path(args.out))
    print(f"plot: {args.out}")
    ratios = [
        row["FAERec"]["step_s"] / row["bare"]["step_s"]
        for row in rows
        if "step_s" in row["FAERec"] and "step_s" in row["bare"]
    ]
    print(f"max_step_ratio={max(ratios):.2f}" if ratios else "max_step_ratio=nan")
    failed = any("error" in row["bare"] or "error" in row["FAERec"] for row in rows)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
