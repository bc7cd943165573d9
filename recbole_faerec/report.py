"""Paper-style report: bare backbone vs FAERec (and ablations), same seed and settings.

``python -m recbole_faerec.report --dataset D --model SASRec[,FMLPRec,...] [--ablations]``

Every backbone is trained bare (``base=True``) and wrapped by FAERec with identical settings, and,
with ``--ablations``, once more per Table 3 switch. ``DIR`` (default ``reports/D-M``) receives:

* ``results.json``: one shape for one or several backbones, keyed by backbone then variant
  (``base``, ``faerec`` and the ablation names ``w/o AGF``...)::

      {"metrics": {"SASRec": {"base": {"hit@10": ...}, "faerec": {...}, "w/o AGF": {...}}},
       "wall_time_s": {"SASRec": {"base": 12.3, "faerec": 20.1, ...}},
       "model_files": {"SASRec": {"base": "saved/...pth", ...}},
       "settings": {"SASRec": {effective config of the FAERec run}},
       "dataset": ..., "backbones": [...], "variants": [...], "k": 10, "seed": ...,
       "overrides": {...}, "config_files": [...], "machine": {...}, "command": "..."}

  Metrics are the test results (keys of :mod:`recbole_faerec.metrics`); undefined values are
  ``null``.
* ``results.md``: Table 2 layout (overall/tail/head H@K and N@K), coverage (Table 5) and
  per-popularity-group H@K, each with a relative-improvement row, plus wall times and the command.
* ``groups.png``: per-group H@K, base vs FAERec (Figure 4).
* ``tsne.png``: t-SNE of the ID and projected LLM embeddings of sampled items (Figure 5).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from recbole_faerec.config import PROPERTIES_DIR, split_config_files
from recbole_faerec.io import parse_overrides
from recbole_faerec.metrics import DEFAULT_HEAD_RATIO, head_mask
from recbole_faerec.process import hidden_command_line
from recbole_faerec.quick_start import load_data_and_model, run_recbole_faerec
from recbole_faerec.results import group_labels, save_results_json

ABLATIONS: dict[str, dict[str, Any]] = {
    "w/o AGF": {"fusion": "sum"},
    "w/o ILA": {"item_alignment": False},
    "w/o FLA": {"feature_alignment": False},
    "w/o CLS": {"curriculum": False},
    "w/o PG": {"popularity_groups": False},
}
BASE, FAEREC = "base", "faerec"
IMPROVEMENT = "Improv."
_SETTING_KEYS = (
    "model",
    "backbone",
    "dataset",
    "seed",
    "reproducibility",
    "device",
    "epochs",
    "stopping_step",
    "train_batch_size",
    "eval_batch_size",
    "learning_rate",
    "n_layers",
    "n_heads",
    "MAX_ITEM_LIST_LENGTH",
    "repeatable",
    "eval_args",
)
#: The keys that name the evaluation/training protocol, recorded next to the numbers.
PROTOCOL_KEYS = ("repeatable", "MAX_ITEM_LIST_LENGTH", "loss_type", "train_mode", "eval_args")
_SETTING_FILES = ("metrics.yaml", "embedding.yaml", "model/FAERec.yaml")
_JSON_TYPES = (str, int, float, bool, type(None), list, tuple, dict)


def _say(message: str) -> None:
    tqdm.write(f"[report] {message}", file=sys.stderr)


def _setting_keys(overrides: Mapping[str, Any]) -> list[str]:
    """Keys worth recording: a fixed protocol list, the plugin's yaml keys and the overrides."""
    import yaml

    keys = list(_SETTING_KEYS)
    for name in _SETTING_FILES:
        path = PROPERTIES_DIR / name
        if path.is_file():
            keys += list(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    keys += list(overrides)
    return list(dict.fromkeys(keys))


def effective_settings(config: Any, keys: Sequence[str]) -> dict[str, Any]:
    """``config[key]`` for the ``keys`` it holds; values JSON cannot hold become strings."""
    settings = {}
    for key in keys:
        if key in config:
            value = config[key]
            settings[key] = value if isinstance(value, _JSON_TYPES) else str(value)
    return settings


def machine_info() -> dict[str, Any]:
    """CPU count, platform and library versions of this machine."""
    import recbole

    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "recbole": recbole.__version__,
        "numpy": np.__version__,
    }


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def relative_improvement(base: Any, new: Any) -> float | None:
    """``100 * (new - base) / base`` in percent; None when undefined (missing, nan or base 0)."""
    base, new = _number(base), _number(new)
    if base is None or new is None or base == 0:
        return None
    return 100.0 * (new - base) / base


def _metric(result: Mapping[str, Any], key: str) -> float | None:
    return _number({str(k).lower(): v for k, v in result.items()}.get(key.lower()))


def _value_cell(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _percent_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}%"


def variant_label(backbone: str, variant: str) -> str:
    """Row label: the backbone's name for ``base``, ``FAERec`` and ``FAERec w/o ...``."""
    if variant == BASE:
        return backbone
    return "FAERec" if variant == FAEREC else f"FAERec {variant}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """GitHub markdown table, first two columns left-aligned, the rest right-aligned."""
    align = [":--" if i < 2 else "--:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _metric_rows(
    metrics: Mapping[str, Mapping[str, Mapping[str, Any]]], keys: Sequence[str]
) -> list[list[str]]:
    """Per backbone: base, FAERec, relative improvement, then the ablation rows."""
    rows = []
    for backbone, variants in metrics.items():
        for variant, result in variants.items():
            values = [_metric(result, key) for key in keys]
            rows.append([backbone, variant_label(backbone, variant), *map(_value_cell, values)])
            if variant == FAEREC and BASE in variants:
                gains = [
                    relative_improvement(_metric(variants[BASE], key), value)
                    for key, value in zip(keys, values, strict=True)
                ]
                rows.append([backbone, IMPROVEMENT, *map(_percent_cell, gains)])
    return rows


def group_labels_of(metrics: Mapping[str, Mapping[str, Mapping[str, Any]]], k: int) -> list[str]:
    """Popularity-group labels found at ``@k`` in any result, in order of appearance."""
    labels: list[str] = []
    for variants in metrics.values():
        for result in variants.values():
            at_k = {key: v for key, v in result.items() if str(key).lower().endswith(f"@{k}")}
            labels += [label for label in group_labels(at_k) if label not in labels]
    return labels


def format_report_markdown(report: Mapping[str, Any]) -> str:
    """``results.md`` from the ``results.json`` mapping (see the module docstring)."""
    k = report["k"]
    metrics = report["metrics"]
    main_keys = [f"{p}{m}@{k}" for p in ("", "tail", "head") for m in ("hit", "ndcg")]
    main_header = [f"{p}{m}@{k}" for p in ("", "Tail ", "Head ") for m in ("H", "N")]
    coverage_keys = [f"coverage@{k}", f"tailcoverage@{k}"]
    labels = group_labels_of(metrics, k)
    walls = report.get("wall_time_s", {})
    wall_rows = [
        [backbone, variant_label(backbone, variant), f"{seconds:.1f}"]
        for backbone, variants in walls.items()
        for variant, seconds in variants.items()
    ]
    parts = [
        f"# FAERec report: {', '.join(metrics)} on {report.get('dataset', '?')}",
        f"Test split, K = {k}, seed {report.get('seed', '?')}. {IMPROVEMENT} is the relative "
        "improvement of FAERec over the bare backbone; `-` marks an undefined value "
        "(e.g. an empty group).",
        f"Reproduce with:\n\n```\n{report.get('command', '')}\n```",
        "Protocol: "
        + ", ".join(f"`{key}: {value}`" for key, value in report.get("protocol", {}).items()),
        "## Overall, tail and head accuracy (Table 2)\n\n"
        + markdown_table(["Backbone", "Model", *main_header], _metric_rows(metrics, main_keys)),
        "## Coverage (Table 5)\n\n"
        + markdown_table(
            ["Backbone", "Model", f"Coverage@{k}", f"TailCoverage@{k}"],
            _metric_rows(metrics, coverage_keys),
        ),
    ]
    repeat_keys = [f"{p}{m}@{k}" for p in ("repeat", "new") for m in ("hit", "ndcg")]
    if any(
        _metric(result, key) is not None
        for r in metrics.values()
        for result in r.values()
        for key in repeat_keys
    ):
        parts.append(
            "## Targets the user had before (repeat) and new ones\n\n"
            + markdown_table(
                ["Backbone", "Model", f"Repeat H@{k}", f"Repeat N@{k}", f"New H@{k}", f"New N@{k}"],
                _metric_rows(metrics, repeat_keys),
            )
        )
    if labels:
        group_keys = [f"grouphit[{label}]@{k}" for label in labels]
        parts.append(
            f"## H@{k} per training-popularity group (Figure 4)\n\n"
            + markdown_table(["Backbone", "Model", *labels], _metric_rows(metrics, group_keys))
        )
    if wall_rows:
        parts.append("## Wall time\n\n" + markdown_table(["Backbone", "Run", "s"], wall_rows))
    machine = report.get("machine")
    if machine:
        parts.append(
            "Machine: " + ", ".join(f"{key} {value}" for key, value in machine.items()) + "."
        )
    return "\n\n".join(parts) + "\n"


def _figure_grid(n: int, width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return plt, fig, axes[0]


def plot_groups(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Grouped bars of per-group H@K, base vs FAERec, one panel per backbone."""
    k, metrics = report["k"], report["metrics"]
    labels = group_labels_of(metrics, k)
    plt, fig, axes = _figure_grid(len(metrics), 5.0, 3.6)
    x = np.arange(len(labels))
    for ax, (backbone, variants) in zip(axes, metrics.items(), strict=True):
        shown = [v for v in (BASE, FAEREC) if v in variants]
        width = 0.8 / max(len(shown), 1)
        for i, variant in enumerate(shown):
            heights = [_metric(variants[variant], f"grouphit[{g}]@{k}") for g in labels]
            heights = [np.nan if h is None else h for h in heights]
            offset = (i - (len(shown) - 1) / 2) * width
            ax.bar(x + offset, heights, width, label=variant_label(backbone, variant))
        ax.set_xticks(x, labels)
        ax.set_xlabel("training popularity of the target item")
        ax.set_ylabel(f"H@{k}")
        ax.set_title(backbone)
        ax.legend()
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target, dpi=120)
    plt.close(fig)
    return target


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
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target, dpi=120)
    plt.close(fig)
    return target


def _cli_value(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def report_command(
    dataset: str,
    backbones: Sequence[str],
    out: Path,
    config_file_list: Sequence[str] | None,
    overrides: Mapping[str, Any],
    ablations: bool,
    tsne_items: int,
) -> str:
    """The command line that reproduces a report."""
    args = ["python", "-m", "recbole_faerec.report", "--dataset", dataset]
    args += ["--model", ",".join(backbones), "--out", str(out)]
    if config_file_list:
        args += ["--config_files", " ".join(str(f) for f in config_file_list)]
    if ablations:
        args.append("--ablations")
    args += ["--tsne-items", str(tsne_items)]
    args += [f"--{key}={_cli_value(value)}" for key, value in overrides.items()]
    return shlex.join(args)


def finished_runs(path: Path, command: str) -> tuple[dict, dict, dict]:
    """Metrics, wall times and model files of the runs that a report with the same ``command``
    already finished and recorded in ``path`` (``results.json``); empty when there are none.
    An undefined metric reads back as None, which the tables and plots treat like nan."""
    if not path.is_file():
        return {}, {}, {}
    saved = json.loads(path.read_text(encoding="utf-8"))
    if saved.get("command") != command:
        return {}, {}, {}
    return saved.get("metrics", {}), saved.get("wall_time_s", {}), saved.get("model_files", {})


def run_report(
    dataset: str,
    backbones: Sequence[str],
    out: str | os.PathLike[str] | None = None,
    config_file_list: Sequence[str] | None = None,
    config_dict: Mapping[str, Any] | None = None,
    ablations: bool = False,
    tsne_items: int = 1000,
    resume: bool = False,
) -> dict[str, Any]:
    """Train every variant of every backbone, then write the report files; returns the JSON dict.

    ``results.json`` is rewritten (atomically) after every finished run; with ``resume``, the
    runs that the same command already finished (and whose model file still exists) are kept
    instead of trained again.
    """
    backbones = list(backbones)
    overrides = dict(config_dict or {})
    out_dir = Path(out or Path("reports") / f"{dataset}-{'_'.join(backbones)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    variants = {BASE: {}, FAEREC: {}, **(ABLATIONS if ablations else {})}
    command = report_command(
        dataset, backbones, out_dir, config_file_list, overrides, ablations, tsne_items
    )
    keys = _setting_keys(overrides)
    results_path = out_dir / "results.json"
    metrics: dict[str, dict[str, Any]] = {}
    walls: dict[str, dict[str, float]] = {}
    files: dict[str, dict[str, str | None]] = {}
    if resume:
        metrics, walls, files = finished_runs(results_path, command)
    settings: dict[str, dict[str, Any]] = {}
    views: dict[str, dict[str, np.ndarray]] = {}
    seed = None
    progress = tqdm(total=len(backbones) * (len(variants) + 1), desc="report", unit="run")
    with progress, hidden_command_line():
        for backbone in backbones:
            for variant, switches in variants.items():
                progress.set_postfix_str(f"{backbone} {variant}")
                done = files.get(backbone, {}).get(variant)
                if variant in metrics.get(backbone, {}) and done and Path(done).is_file():
                    _say(f"{backbone} {variant}: kept from {results_path}")
                    progress.update()
                    continue
                start = time.perf_counter()
                result = run_recbole_faerec(
                    backbone,
                    dataset,
                    config_file_list,
                    {**overrides, **switches},
                    saved=True,
                    base=variant == BASE,
                )
                walls.setdefault(backbone, {})[variant] = time.perf_counter() - start
                metrics.setdefault(backbone, {})[variant] = dict(result["test_result"])
                files.setdefault(backbone, {})[variant] = result["model_file"]
                save_results_json(
                    metrics,
                    results_path,
                    complete=False,
                    wall_time_s=walls,
                    model_files=files,
                    command=command,
                )
                hit = _metric(result["test_result"], "hit@10")
                _say(
                    f"{backbone} {variant}: {walls[backbone][variant]:.1f}s, "
                    f"test H@10 {_value_cell(hit)}"
                )
                progress.update()
            progress.set_postfix_str(f"{backbone} embeddings")
            config, model, *_ = load_data_and_model(files[backbone][FAEREC])
            settings[backbone] = effective_settings(config, keys)
            seed = config["seed"] if seed is None else seed
            head_ratio = config["head_ratio"] if "head_ratio" in config else None
            views[backbone] = item_views(
                model, tsne_items, config["seed"], head_ratio or DEFAULT_HEAD_RATIO
            )
            progress.update()
            del model
    topk = settings[backbones[0]].get("topk") or [10]
    first = settings[backbones[0]]
    extra = {
        "protocol": {key: first.get(key) for key in PROTOCOL_KEYS},
        "wall_time_s": walls,
        "model_files": files,
        "settings": settings,
        "dataset": dataset,
        "backbones": backbones,
        "variants": list(variants),
        "k": 10 if 10 in topk else max(topk),
        "seed": seed,
        "overrides": overrides,
        "config_files": [str(f) for f in config_file_list or []],
        "machine": machine_info(),
        "command": command,
    }
    save_results_json(metrics, results_path, complete=True, **extra)
    report = {"metrics": metrics, **extra}
    (out_dir / "results.md").write_text(format_report_markdown(report), encoding="utf-8")
    plot_groups(report, out_dir / "groups.png")
    _say(f"t-SNE of {tsne_items} items per backbone")
    plot_tsne(views, out_dir / "tsne.png", seed)
    _say(f"wrote {out_dir}/results.json, results.md, groups.png, tsne.png")
    return report


def build_parser() -> argparse.ArgumentParser:
    """The report's argument parser; other ``--key=value`` flags are config overrides."""
    parser = argparse.ArgumentParser(
        prog="python -m recbole_faerec.report",
        description="Train the bare backbone and FAERec (and ablations) with the same seed and "
        "settings and write results.json, results.md, groups.png and tsne.png. Any other "
        "--key=value is a config override for every run (e.g. --epochs=5).",
    )
    parser.add_argument("--dataset", "-d", required=True, help="dataset name")
    parser.add_argument(
        "--model", "-m", required=True, help="backbone, or a comma-separated list of backbones"
    )
    parser.add_argument("--out", default=None, help="output folder (default reports/D-M)")
    parser.add_argument(
        "--config_files", default=None, help="space-separated yaml files (RecBole style)"
    )
    parser.add_argument(
        "--ablations", action="store_true", help="also run FAERec with each Table 3 switch off"
    )
    parser.add_argument(
        "--tsne-items", type=int, default=1000, help="items sampled for the t-SNE (default 1000)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs that this same command already finished (from results.json)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args, extra = build_parser().parse_known_args(argv)
    backbones = [name.strip() for name in args.model.split(",") if name.strip()]
    config_files = split_config_files(args.config_files)
    try:
        overrides = parse_overrides(extra, literal=False)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    run_report(
        args.dataset,
        backbones,
        out=args.out,
        config_file_list=config_files,
        config_dict=overrides,
        ablations=args.ablations,
        tsne_items=args.tsne_items,
        resume=args.resume,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
