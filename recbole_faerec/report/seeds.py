"""One report per seed, and the spread of the test figures over the seeds.

``python -m recbole_faerec.report --dataset D --model M --seeds 2020,2021,2022`` runs the report of
:func:`~recbole_faerec.report.runner.run_report` once per seed, each in ``DIR/seed-<S>/`` (each
resumable with ``--resume``, like a single report), then writes:

* ``DIR/seeds.json``: per backbone and variant, each metric's value per seed, mean and sample
  standard deviation; per backbone and FAERec variant, each metric's ratio to the bare backbone
  per seed and the ratio of the means::

      {"seeds": [2020, 2021], "k": 10, "command": "...",
       "metrics": {"SASRec": {"base": {"tailhit@10": {"values": [...], "mean": .., "std": ..}}}},
       "ratios": {"SASRec": {"faerec": {"tailhit@10": {"values": [...], "of_means": ..}}}}}

* ``DIR/seeds.md``: the same as two tables, per seed and over the seeds.

One seed can move a figure as much as a setting does (``docs/experiments.md`` has the spread on
the bundled data), so compare settings over several.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from recbole_faerec.io import atomic_write_text, write_json
from recbole_faerec.report.runner import report_command, run_report
from recbole_faerec.report.tables import (
    BASE,
    markdown_table,
    method_variants,
    metric_value,
    value_cell,
    variant_label,
)

#: Metrics summarised over seeds (``@k`` is appended), with their column titles.
SEED_METRICS = {
    "hit": "H",
    "ndcg": "N",
    "tailhit": "Tail H",
    "headhit": "Head H",
    "coverage": "Coverage",
}


def parse_seeds(text: str) -> list[int]:
    """``"2020,2021"`` -> ``[2020, 2021]``; a clear error names ``--seeds`` otherwise."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(
            f"--seeds: {text!r} is not a comma-separated list of distinct integers; "
            "fix: e.g. --seeds 2020,2021,2022."
        )
    return seeds


def _spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Values, their mean and sample standard deviation (None when undefined)."""
    known = [v for v in values if v is not None]
    complete = len(known) == len(values) and known
    return {
        "values": list(values),
        "mean": statistics.fmean(known) if complete else None,
        "std": statistics.stdev(known) if complete and len(known) >= 2 else None,
    }


def _ratio(new: float | None, base: float | None) -> float | None:
    if new is None or base is None or base == 0:
        return None
    return new / base


def summarise_seeds(
    reports: Mapping[int, Mapping[str, Any]], k: int = 10
) -> dict[str, dict[str, Any]]:
    """Spread over seeds of the ``SEED_METRICS`` at ``k`` of reports keyed by seed.

    Each report is what :func:`run_report` returns (``metrics[backbone][variant][metric]``).
    Returns ``{"metrics": ..., "ratios": ...}`` in the layout of ``seeds.json`` (module docstring).
    """
    first = next(iter(reports.values()))["metrics"]
    keys = [f"{name}@{k}" for name in SEED_METRICS]
    metrics: dict[str, dict[str, Any]] = {}
    ratios: dict[str, dict[str, Any]] = {}
    for backbone, variants in first.items():
        spreads = {
            variant: {
                key: _spread(
                    [metric_value(r["metrics"][backbone][variant], key) for r in reports.values()]
                )
                for key in keys
            }
            for variant in variants
        }
        metrics[backbone] = spreads
        base = spreads.get(BASE)
        ratios[backbone] = {
            variant: {key: _ratios(by_key[key], base[key]) for key in keys}
            for variant, by_key in spreads.items()
            if variant != BASE and base is not None
        }
    return {"metrics": metrics, "ratios": ratios}


def _ratios(new: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """A FAERec variant's spread over the bare backbone's: per seed and of the means."""
    per_seed = zip(new["values"], base["values"], strict=True)
    return {
        "values": [_ratio(a, b) for a, b in per_seed],
        "of_means": _ratio(new["mean"], base["mean"]),
    }


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _mean_cell(spread: Mapping[str, Any]) -> str:
    if spread["std"] is None:
        return value_cell(spread["mean"])
    return f"{value_cell(spread['mean'])} ± {value_cell(spread['std'])}"


def _seed_row_label(backbone: str, variant: str, several: bool) -> str:
    """The model of a per-seed row, with its backbone when the report has several."""
    label = variant_label(backbone, variant)
    return f"{label} ({backbone})" if several and variant != BASE else label


def format_seeds_markdown(summary: Mapping[str, Any], dataset: str) -> str:
    """``seeds.md`` from the ``seeds.json`` dict: the test figures per seed (with FAERec / bare)
    and their spread."""
    seeds, k, command = summary["seeds"], summary["k"], summary["command"]
    keys = [f"{name}@{k}" for name in SEED_METRICS]
    header = [f"{title}@{k}" for title in SEED_METRICS.values()]
    several = len(summary["metrics"]) > 1
    per_seed, spread = [], []
    for backbone, variants in summary["metrics"].items():
        for i, seed in enumerate(seeds):
            for variant, by_key in variants.items():
                label = _seed_row_label(backbone, variant, several)
                per_seed.append(
                    [str(seed), label, *(value_cell(by_key[key]["values"][i]) for key in keys)]
                )
            for variant, by_key in summary["ratios"][backbone].items():
                label = f"{_seed_row_label(backbone, variant, several)} / {backbone}"
                per_seed.append(
                    [str(seed), label, *(_times(by_key[key]["values"][i]) for key in keys)]
                )
        for variant, by_key in variants.items():
            cells = [_mean_cell(by_key[key]) for key in keys]
            spread.append([backbone, variant_label(backbone, variant), *cells])
        for variant, by_key in summary["ratios"][backbone].items():
            label = f"{variant_label(backbone, variant)} / {backbone}, ratio of the means"
            spread.append([backbone, label, *(_times(by_key[key]["of_means"]) for key in keys)])
    seed_list = ", ".join(str(seed) for seed in seeds)
    return "\n".join(
        [
            f"# FAERec report over seeds {seed_list}: {dataset}",
            "",
            f"Test split, K = {k}; each seed's full report is in `seed-<S>/`.",
            "",
            "Reproduce with:",
            "",
            "```",
            command,
            "```",
            "",
            "## Per seed",
            "",
            markdown_table(["Seed", "Model", *header], per_seed),
            "",
            f"## Over the seeds (mean ± sample standard deviation, {len(seeds)} seeds)",
            "",
            markdown_table(["Backbone", "Model", *header], spread),
            "",
        ]
    )


def run_seed_reports(
    dataset: str,
    backbones: Sequence[str],
    seeds: Sequence[int],
    out: str | os.PathLike[str] | None = None,
    config_file_list: Sequence[str] | None = None,
    config_dict: Mapping[str, Any] | None = None,
    ablations: bool = False,
    tsne_items: int = 1000,
    resume: bool = False,
    rescore: bool = False,
    methods: Sequence[str] | str | None = None,
) -> dict[str, Any]:
    """Run the report once per seed (``out/seed-<S>/``), then write ``seeds.json`` and
    ``seeds.md`` in ``out``; returns the ``seeds.json`` dict."""
    overrides = dict(config_dict or {})
    if "seed" in overrides:
        raise ValueError("seed: give either --seeds or --seed, not both.")
    backbones = list(backbones)
    chosen = method_variants(methods)
    out_dir = Path(out or Path("reports") / f"{dataset}-{'_'.join(backbones)}-seeds")
    reports = {
        seed: run_report(
            dataset,
            backbones,
            out=out_dir / f"seed-{seed}",
            config_file_list=config_file_list,
            config_dict={**overrides, "seed": seed},
            ablations=ablations,
            tsne_items=tsne_items,
            resume=resume,
            rescore=rescore,
            methods=methods,
        )
        for seed in seeds
    }
    k = next(iter(reports.values()))["k"]
    command = report_command(
        dataset, backbones, out_dir, config_file_list, overrides, ablations, tsne_items, chosen
    )
    command += " --seeds " + ",".join(str(seed) for seed in seeds)
    summary = {"seeds": list(seeds), "k": k, "command": command, **summarise_seeds(reports, k)}
    write_json(out_dir / "seeds.json", summary)
    atomic_write_text(out_dir / "seeds.md", format_seeds_markdown(summary, dataset))
    return summary
