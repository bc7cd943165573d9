"""Tables of measured figures, rendered from the committed files that hold them.

* :func:`render_results`: one report's ``results.json`` (``reports/<dataset>-<backbones>/``), one
  row per backbone and method in the paper's order (alone and + text prior side by side) with
  its ``Impr.`` row, the ratio to the bare backbone, the row validation picks and Table 3;
* :func:`render_seeds`: a report over seeds (``seeds.json``), mean and spread per variant;
* :func:`render_scaling`: the lines ``benchmarks/scaling.py`` printed (``key=value`` fields);
* :func:`render_sweep`: a two-key sweep's ``trials.csv`` as grids of its validation figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from recbole_faerec.docs.reference import DocsError
from recbole_faerec.report.plots import grid_keys, sensitivity_grid
from recbole_faerec.report.seeds import SEED_METRICS
from recbole_faerec.report.tables import (
    BASE,
    BEST_BASELINE_IMPROVEMENT,
    FAEREC,
    MODEL_VARIANTS,
    PRIOR_ROWS,
    TABLE2_VARIANTS,
    ablation_grid,
    best_baseline_improvement,
    markdown_table,
    metric_value,
    table2_order,
    validation_pick,
    validation_pick_text,
    value_cell,
    variant_label,
)

#: The ratio to the bare backbone stated under each results table.
RATIO_METRIC = "tailhit"
#: The columns of the README's results tables, each for the model alone and + text prior; the
#: head and coverage columns are in each report's ``results.md``.
README_METRICS = ("hit", "ndcg", RATIO_METRIC)


def load_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DocsError(f"{path}: no such file; fix: name a committed report in the marker.")
    return json.loads(path.read_text(encoding="utf-8"))


def metric_columns(k: int) -> tuple[list[str], list[str]]:
    """``(metric keys, column titles)`` of the results tables at ``k``: those of the seed tables."""
    keys = [f"{name}@{k}" for name in SEED_METRICS]
    titles = [f"{title}@{k}" for title in SEED_METRICS.values()]
    return keys, titles


def _variants(report: Mapping[str, Any], backbone: str) -> list[str]:
    """The Table 2 variants of ``backbone`` in the paper's order (:data:`TABLE2_VARIANTS`)."""
    return table2_order([v for v in report["metrics"].get(backbone, {}) if v in TABLE2_VARIANTS])


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}%"


def _ratio(new: float | None, base: float | None) -> str:
    return "-" if new is None or not base else f"{new / base:.2f}x"


def _protocol(protocol: Mapping[str, Any]) -> str:
    return ", ".join(
        f"`{key}: {value}`" for key, value in protocol.items() if not isinstance(value, Mapping)
    )


def render_results(root: Path, folder: str) -> str:
    """The test figures of the report in ``folder`` (relative to ``root``): a row per method
    with its figures alone and + text prior side by side (:data:`README_METRICS`)."""
    report = load_json(root / folder / "results.json")
    k = report.get("k", 10)
    keys = [f"{name}@{k}" for name in README_METRICS]
    titles = [f"{SEED_METRICS[name]}@{k}" for name in README_METRICS]
    title_of = dict(zip(keys, titles, strict=True))
    backbones = report.get("backbones") or list(report["metrics"])
    rows, ratios, picks = [], [], []
    for backbone in backbones:
        results = report["metrics"].get(backbone, {})
        for method in (v for v in MODEL_VARIANTS if v in results):
            prior = results.get(PRIOR_ROWS[method], {})
            cells = [value_cell(metric_value(results[method], key)) for key in keys]
            cells += [value_cell(metric_value(prior, key)) for key in keys]
            rows.append([backbone, variant_label(backbone, method), *cells])
            if method == FAEREC:
                gains = [best_baseline_improvement(results, keys, p) for p in (False, True)]
                if gains[0] is not None or gains[1] is not None:
                    cells = [_percent(g) for part in gains for g in part or [None] * len(keys)]
                    rows.append([backbone, BEST_BASELINE_IMPROVEMENT, *cells])
        pick = validation_pick(report, backbone)
        if pick is not None:
            text = validation_pick_text(backbone, pick)
            picks.append(f"{backbone}: {text}" if len(backbones) > 1 else text)
        if BASE in results:
            key = f"{RATIO_METRIC}@{k}"
            base = metric_value(results[BASE], key)
            gains = [
                f"{variant_label(backbone, v)} {_ratio(metric_value(results[v], key), base)}"
                for v in _variants(report, backbone)
                if v != BASE
            ]
            ratios.append(f"{backbone}: {', '.join(gains)}" if len(backbones) > 1 else gains)
    lines = [
        f"`{folder}/results.json`: `{report.get('dataset', '?')}`, test split, K = {k}, "
        f"seed {report.get('seed', '?')}; {_protocol(report.get('protocol', {}))}.",
    ]
    if report.get("command"):  # the same paragraph: the README keeps within its line budget
        lines.append(f"Command: `{report['command']}`")
    header = ["Backbone", "Model", *titles, *(f"{title} + prior" for title in titles)]
    lines += ["", markdown_table(header, rows)]
    if ratios:
        title = title_of[f"{RATIO_METRIC}@{k}"]
        parts = ratios if len(backbones) > 1 else ratios[0]
        lines += ["", f"{title} over the bare backbone: {'; '.join(parts)}."]
    if picks:  # the ratios' paragraph, if any: the README keeps within its line budget
        lines += [*([] if ratios else [""]), f"Validation picks: {'; '.join(picks)}."]
    ablation_keys = [f"ndcg@{k}", f"{RATIO_METRIC}@{k}"]
    header, table3 = ablation_grid(
        report["metrics"], ablation_keys, [title_of[key] for key in ablation_keys]
    )
    if len(header) > 1:
        lines += [
            "",
            "Table 3, FAERec with one part switched off (in brackets, the change against FAERec):",
            "",
            markdown_table(header, table3, text_columns=1),
        ]
    return "\n".join(lines)


def _spread_cell(spread: Mapping[str, Any]) -> str:
    mean, std = spread.get("mean"), spread.get("std")
    return value_cell(mean) if std is None else f"{value_cell(mean)} ± {value_cell(std)}"


def render_seeds(root: Path, folder: str) -> str:
    """Mean ± sample standard deviation over the seeds of ``folder/seeds.json``, and the ratio of
    the means to the bare backbone."""
    summary = load_json(root / folder / "seeds.json")
    k = summary.get("k", 10)
    keys, titles = metric_columns(k)
    rows = []
    for backbone, variants in summary["metrics"].items():
        for variant, by_key in variants.items():
            cells = [_spread_cell(by_key.get(key, {})) for key in keys]
            rows.append([backbone, variant_label(backbone, variant), *cells])
        for variant, by_key in summary.get("ratios", {}).get(backbone, {}).items():
            label = f"{variant_label(backbone, variant)} / {backbone}, ratio of the means"
            cells = [
                "-"
                if by_key.get(key, {}).get("of_means") is None
                else f"{by_key[key]['of_means']:.2f}x"
                for key in keys
            ]
            rows.append([backbone, label, *cells])
    seeds = ", ".join(str(seed) for seed in summary.get("seeds", []))
    lines = [
        f"`{folder}/seeds.json`: test split, K = {k}, seeds {seeds} "
        "(mean ± sample standard deviation).",
        "",
        markdown_table(["Backbone", "Model", *titles], rows),
    ]
    if summary.get("command"):
        lines += ["", f"Command: `{summary['command']}`"]
    return "\n".join(lines)


#: Column titles of the fields ``benchmarks/scaling.py`` prints; other fields keep their names.
SCALING_TITLES = {
    "items": "items",
    "llm_dim": "LLM dim",
    "step_s": "step s",
    "step_ratio": "step ratio",
    "peak_gb": "peak GB",
    "eval_s_per_1000": "eval s per 1,000 users",
    "table_s": "eval table s",
}


def parse_scaling(text: str) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Rows of ``key=value`` fields (a bare word prefixes the fields after it: ``step_s
    bare=0.75`` is ``step_s bare``), and the one-field summary lines."""
    rows, summary = [], {}
    for line in text.splitlines():
        fields: dict[str, str] = {}
        group = ""
        for token in line.split():
            if "=" not in token:
                group = token
                continue
            key, value = token.split("=", 1)
            fields[f"{group} {key}" if group and key in ("bare", "faerec") else key] = value
            if key not in ("bare", "faerec"):
                group = ""
        if len(fields) == 1:
            summary.update(fields)
        elif fields:
            rows.append(fields)
    return rows, summary


def render_scaling(root: Path, file: str) -> str:
    """The scaling benchmark's table from its committed output."""
    path = root / file
    if not path.is_file():
        raise DocsError(f"{path}: no such file; fix: run benchmarks/scaling.py or fix the marker.")
    rows, summary = parse_scaling(path.read_text(encoding="utf-8"))
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    merged: list[str] = []  # "step_s bare" and "step_s faerec" share one column
    for column in columns:
        name = column.split(" ")[0]
        if name not in merged:
            merged.append(name)

    def cell(row: dict[str, str], name: str) -> str:
        if name in row:
            value = row[name]
            return f"{int(value):,}" if name == "items" and value.isdigit() else value
        pair = [row.get(f"{name} bare", "-"), row.get(f"{name} faerec", "-")]
        return " / ".join(pair)

    header = [
        SCALING_TITLES.get(name, name) + ("" if name in columns else " (bare / FAERec)")
        for name in merged
    ]
    table = [[cell(row, name) for name in merged] for row in rows]
    align = ["--:"] * len(header)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    lines += ["", f"`{file}`" + "".join(f"; `{key}={value}`" for key, value in summary.items())]
    return "\n".join(lines)


#: Columns of a sweep's ``trials.csv`` that are not searched parameters.
TRIAL_COLUMNS = ("trial", "epochs", "status", "error")
#: Titles of the validation figures of ``trials.csv``.
SWEEP_TITLES = {"best_ndcg@10": "NDCG@10", "at_best_tailhit@10": "tail H@10 (at the best NDCG@10)"}


def render_sweep(root: Path, folder: str) -> str:
    """Grids of a two-key sweep's validation figures (``folder/trials.csv``): the second key
    (``alpha``) down, the first (``lambda``) across, the best cell of each grid in bold."""
    path = root / folder / "trials.csv"
    if not path.is_file():
        raise DocsError(f"{path}: no such file; fix: copy the sweep's trials.csv there.")
    table = pd.read_csv(path)
    figures = [c for c in table if c.startswith(("best_", "at_best_"))]
    keys = grid_keys([c for c in table if c not in TRIAL_COLUMNS and c not in figures])
    if len(keys) != 2:
        raise DocsError(f"{path}: a grid needs two searched keys, found {keys}; fix the marker.")
    done = table[table["status"] != "failed"]
    failed = len(table) - len(done)
    lines = [
        f"`{folder}/trials.csv`: {len(table)} trials ({failed} failed), validation split; "
        f"rows: {keys[1]}, columns: {keys[0]}."
    ]
    for figure in figures:
        grid = sensitivity_grid(done, keys[0], keys[1], figure)
        if grid.empty:
            continue
        best = grid.stack().idxmax()
        cells = grid.astype(object).where(grid.notna(), None)
        rows = [
            [str(y)]
            + [
                f"**{value_cell(v)}**" if (y, x) == best else value_cell(v)
                for x, v in cells.loc[y].items()
            ]
            for y in grid.index
        ]
        header = [f"{keys[1]} \\ {keys[0]}", *map(str, grid.columns)]
        lines += ["", f"Validation {SWEEP_TITLES.get(figure, figure)}:", ""]
        lines.append(markdown_table(header, rows))
    return "\n".join(lines)
