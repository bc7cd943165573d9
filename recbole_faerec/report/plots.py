"""The report's and the sweep's figures: per-group H@K (``groups.png``), the t-SNE of the two
item views (``tsne.png``) and a sweep's sensitivity plot (``sensitivity.png``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from recbole_faerec.popularity import head_mask
from recbole_faerec.report.tables import (
    BASE,
    BASE_PRIOR,
    FAEREC,
    FAEREC_PRIOR,
    LLMESR,
    LLMINIT,
    group_labels_of,
    metric_value,
    variant_label,
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: str | os.PathLike[str]) -> Path:
    """Lay out ``fig``, write it to ``path`` (PNG, 120 dpi) and free it."""
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target, dpi=120)
    plt.close(fig)
    return target


def _figure_grid(n: int, width: float, height: float):
    plt = _pyplot()
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return plt, fig, axes[0]


def plot_groups(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Grouped bars of per-group H@K of the bare backbone, LLMInit, LLM-ESR, FAERec and the
    bare backbone's and FAERec's text-prior rows, one panel per backbone."""
    k, metrics = report["k"], report["metrics"]
    labels = group_labels_of(metrics, k)
    plt, fig, axes = _figure_grid(len(metrics), 5.0, 3.6)
    x = np.arange(len(labels))
    for ax, (backbone, variants) in zip(axes, metrics.items(), strict=True):
        order = (BASE, BASE_PRIOR, LLMINIT, LLMESR, FAEREC, FAEREC_PRIOR)
        shown = [v for v in order if v in variants]
        width = 0.8 / max(len(shown), 1)
        for i, variant in enumerate(shown):
            heights = [metric_value(variants[variant], f"grouphit[{g}]@{k}") for g in labels]
            heights = [np.nan if h is None else h for h in heights]
            offset = (i - (len(shown) - 1) / 2) * width
            ax.bar(x + offset, heights, width, label=variant_label(backbone, variant))
        ax.set_xticks(x, labels)
        ax.set_xlabel("training popularity of the target item")
        ax.set_ylabel(f"H@{k}")
        ax.set_title(backbone)
        ax.legend()
    return _save(plt, fig, path)


def item_views(model: Any, n_items: int, seed: int, head_ratio: float) -> dict[str, np.ndarray]:
    """ID and projected LLM embeddings of up to ``n_items`` random items, and their head mask."""
    popularity = model.item_popularity.detach().cpu().numpy().astype(np.int64)
    n_total = model.fusion.num_items
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(np.arange(1, n_total), size=min(n_items, n_total - 1), replace=False))
    model.eval()
    with torch.no_grad():
        e_id, e_llm = model.fusion.views(torch.as_tensor(ids, device=model.item_popularity.device))
    return {
        "ids": ids,
        "e_id": e_id.detach().cpu().numpy(),
        "e_llm": e_llm.detach().cpu().numpy(),
        "head": head_mask(popularity[:n_total], head_ratio)[ids],
    }


def plot_tsne(
    views: Mapping[str, Mapping[str, np.ndarray]], path: str | os.PathLike[str], seed: int
) -> Path:
    """2-D t-SNE of both views per backbone: colour by view, marker by head/tail.

    OpenMP runs single-threaded here: sklearn's threads spin against torch's on a busy machine
    (tens of times slower).
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    plt, fig, axes = _figure_grid(len(views), 5.0, 4.6)
    for ax, (backbone, view) in zip(axes, views.items(), strict=True):
        points = np.concatenate([view["e_id"], view["e_llm"]]).astype(np.float64)
        perplexity = min(30.0, (len(points) - 1) / 3.0)
        tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=seed)
        with threadpool_limits(limits=1, user_api="openmp"):
            xy = tsne.fit_transform(points)
        n = len(view["ids"])
        for start, name, colour in ((0, "ID", "tab:blue"), (n, "LLM", "tab:orange")):
            part = xy[start : start + n]
            for is_head, marker, group in ((True, "^", "head"), (False, "o", "tail")):
                mask = view["head"] == is_head
                ax.scatter(
                    part[mask, 0],
                    part[mask, 1],
                    s=8 if is_head else 5,
                    marker=marker,
                    c=colour,
                    alpha=0.8 if is_head else 0.4,
                    label=f"{name} ({group})",
                )
        ax.set_title(f"{backbone}: ID vs LLM views ({n} items)")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(markerscale=2, fontsize=7)
    return _save(plt, fig, path)


def _numeric(values: pd.Series) -> bool:
    return bool(values.map(lambda v: isinstance(v, int | float) and not isinstance(v, bool)).all())


def plot_sensitivity(
    table: pd.DataFrame,
    keys: Sequence[str],
    metrics: Sequence[str],
    path: Path,
    title: str = "",
) -> Path:
    """Validation ``metrics`` over the searched parameters, like the paper's Figure 3.

    Two searched keys give one heat map per metric (``lambda`` across, else the first key;
    ``alpha`` down, else the second); otherwise one line plot of the first metric, ``lambda``
    (else the first key) on x. Trials are averaged per point; a metric no trial reported is left
    out.
    """
    done = table[table["status"] != "failed"]
    shown = [m for m in metrics if m in done and done[m].notna().any()] or list(metrics[:1])
    ordered = grid_keys(keys)
    if len(ordered) == 2 and not done.empty:
        return _sensitivity_heatmaps(done, ordered[0], ordered[1], shown, path, title)
    return _sensitivity_lines(done.dropna(subset=shown[:1]), ordered, shown[0], path, title)


def grid_keys(keys: Sequence[str]) -> list[str]:
    """Searched keys in plotting order: ``lambda`` first (across), ``alpha`` second (down)."""
    preferred = [k for k in ("lambda", "alpha") if k in keys]
    return preferred + [k for k in keys if k not in preferred]


def sensitivity_grid(done: pd.DataFrame, x_key: str, y_key: str, metric: str) -> pd.DataFrame:
    """Mean ``metric`` per (``y_key``, ``x_key``) cell: ``y_key`` values down, ``x_key`` across."""
    return done.pivot_table(index=y_key, columns=x_key, values=metric, aggfunc="mean")


def _sensitivity_heatmaps(
    done: pd.DataFrame, x_key: str, y_key: str, metrics: Sequence[str], path: Path, title: str
) -> Path:
    plt, fig, axes = _figure_grid(len(metrics), 4.8, 4.2)
    for ax, metric in zip(axes, metrics, strict=True):
        grid = sensitivity_grid(done, x_key, y_key, metric)
        image = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", aspect="auto")
        ax.set_xticks(range(grid.shape[1]), [str(v) for v in grid.columns])
        ax.set_yticks(range(grid.shape[0]), [str(v) for v in grid.index])
        for (row, col), value in np.ndenumerate(grid.to_numpy(dtype=float)):
            if np.isfinite(value):
                ax.text(col, row, f"{value:.4f}", ha="center", va="center", fontsize=7, c="w")
        ax.set_xlabel(x_key)
        ax.set_ylabel(y_key)
        ax.set_title(f"{metric} (validation)")
        fig.colorbar(image, ax=ax, shrink=0.8)
    if title:
        fig.suptitle(title)
    return _save(plt, fig, path)


def _sensitivity_lines(
    done: pd.DataFrame, ordered: Sequence[str], metric: str, path: Path, title: str
) -> Path:
    plt = _pyplot()
    x_key = ordered[0] if ordered else None
    hue_key = ordered[1] if len(ordered) > 1 else None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if done.empty or x_key is None:
        ax.bar(range(len(done)), done[metric].to_numpy(dtype=float))
        ax.set_xticks(range(len(done)), done["trial"].astype(str), rotation=45, ha="right")
        ax.set_xlabel("trial")
    else:
        groups = [(None, done)] if hue_key is None else list(done.groupby(hue_key, sort=True))
        numeric_x = _numeric(done[x_key])
        categories = sorted(done[x_key].astype(str).unique())
        for hue, group in groups:
            means = group.groupby(x_key, sort=True)[metric].mean()
            xs = means.index if numeric_x else [categories.index(str(v)) for v in means.index]
            label = None if hue_key is None else f"{hue_key}={hue}"
            ax.plot(list(xs), means.to_numpy(dtype=float), marker="o", label=label)
        if numeric_x:
            values = done[x_key].astype(float)
            if (values > 0).all() and values.max() >= 20 * values.min():
                ax.set_xscale("log")
        else:
            ax.set_xticks(range(len(categories)), categories)
        ax.set_xlabel(x_key)
        if hue_key is not None:
            ax.legend(fontsize="small")
    ax.set_ylabel(f"{metric} (validation)")
    ax.set_title(title or f"Sensitivity: {metric}")
    ax.grid(alpha=0.3)
    return _save(plt, fig, path)
