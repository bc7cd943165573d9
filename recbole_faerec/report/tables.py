"""The report's Markdown (``results.md``): Table 2 layout, coverage, groups and wall times."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from recbole_faerec.results import result_group_labels

BASE, FAEREC = "base", "faerec"
#: The rows of the same two runs scored with the text prior (:mod:`recbole_faerec.text_prior`).
BASE_PRIOR, FAEREC_PRIOR = "base+prior", "faerec+prior"
#: Rows that get an improvement row over the bare backbone.
ATTRIBUTED = (BASE_PRIOR, FAEREC, FAEREC_PRIOR)
#: The rows of Table 2; any other variant is a Table 3 ablation (FAERec with one switch off).
TABLE2_VARIANTS = (BASE, BASE_PRIOR, FAEREC, FAEREC_PRIOR)

IMPROVEMENT = "Improv."


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


def metric_value(result: Mapping[str, Any], key: str) -> float | None:
    """``result[key]`` (case-insensitive) as a finite float, else None."""
    return _number({str(k).lower(): v for k, v in result.items()}.get(key.lower()))


def value_cell(value: float | None, digits: int = 4) -> str:
    """A metric cell: four decimals, ``-`` when undefined."""
    return "-" if value is None else f"{value:.{digits}f}"


def _percent_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}%"


def variant_label(backbone: str, variant: str) -> str:
    """Row label: the backbone's name for ``base``, ``FAERec``, ``FAERec w/o ...``, and
    `` + text prior`` after either for the rows scored with the text prior."""
    labels = {
        BASE: backbone,
        BASE_PRIOR: f"{backbone} + text prior",
        FAEREC: "FAERec",
        FAEREC_PRIOR: "FAERec + text prior",
    }
    return labels.get(variant, f"FAERec {variant}")


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 2
) -> str:
    """GitHub markdown table, the first ``text_columns`` left-aligned, the rest right-aligned."""
    align = [":--" if i < text_columns else "--:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _metric_rows(
    metrics: Mapping[str, Mapping[str, Mapping[str, Any]]], keys: Sequence[str]
) -> list[list[str]]:
    """Per backbone, every variant's row; after each attributed row (the text prior's and
    FAERec's), its relative improvement over the bare backbone."""
    rows = []
    for backbone, variants in metrics.items():
        for variant, result in variants.items():
            values = [metric_value(result, key) for key in keys]
            rows.append([backbone, variant_label(backbone, variant), *map(value_cell, values)])
            if variant in ATTRIBUTED and BASE in variants:
                gains = [
                    relative_improvement(metric_value(variants[BASE], key), value)
                    for key, value in zip(keys, values, strict=True)
                ]
                rows.append([backbone, IMPROVEMENT, *map(_percent_cell, gains)])
    return rows


def table2_metrics(
    metrics: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> dict[str, dict[str, Mapping[str, Any]]]:
    """``metrics`` restricted to the Table 2 variants (the ablations left out)."""
    return {
        backbone: {v: result for v, result in variants.items() if v in TABLE2_VARIANTS}
        for backbone, variants in metrics.items()
    }


def ablation_variants(variants: Mapping[str, Any]) -> list[str]:
    """The Table 3 variants among ``variants`` (FAERec with one switch off), in order."""
    return [v for v in variants if v not in TABLE2_VARIANTS]


def ablation_rows(
    metrics: Mapping[str, Mapping[str, Mapping[str, Any]]],
    keys: Sequence[str],
    change_keys: Sequence[str],
) -> list[list[str]]:
    """Table 3: per backbone with ablations, FAERec's row and each ablation's, with the ``keys``
    values and the relative change of the ``change_keys`` values against FAERec (``-`` on
    FAERec's own row)."""
    rows = []
    for backbone, variants in metrics.items():
        ablations = ablation_variants(variants)
        if not ablations:
            continue
        reference = variants.get(FAEREC, {})
        for variant in ([FAEREC] if FAEREC in variants else []) + ablations:
            result = variants[variant]
            changes = [
                None
                if variant == FAEREC
                else relative_improvement(metric_value(reference, key), metric_value(result, key))
                for key in change_keys
            ]
            rows.append(
                [
                    backbone,
                    variant_label(backbone, variant),
                    *(value_cell(metric_value(result, key)) for key in keys),
                    *map(_percent_cell, changes),
                ]
            )
    return rows


def ablation_grid(
    metrics: Mapping[str, Mapping[str, Mapping[str, Any]]],
    keys: Sequence[str],
    titles: Sequence[str],
) -> tuple[list[str], list[list[str]]]:
    """Table 3 in the paper's layout, ``(header, rows)``: a row per variant (FAERec, then each
    ablation), per backbone with ablations a column per key (titled ``"<backbone> <title>"``);
    an ablation's cells add its relative change against FAERec in brackets."""
    backbones = [b for b, variants in metrics.items() if ablation_variants(variants)]
    variants = [FAEREC]
    for backbone in backbones:
        variants += [v for v in ablation_variants(metrics[backbone]) if v not in variants]
    header = ["Model", *(f"{b} {title}" for b in backbones for title in titles)]
    rows = []
    for variant in variants:
        cells = []
        for backbone in backbones:
            result, reference = metrics[backbone].get(variant), metrics[backbone].get(FAEREC, {})
            for key in keys:
                value = None if result is None else metric_value(result, key)
                cell = value_cell(value)
                change = relative_improvement(metric_value(reference, key), value)
                if variant != FAEREC and change is not None:
                    cell += f" ({change:+.1f}%)"
                cells.append(cell)
        rows.append([variant_label("", variant), *cells])
    return header, rows


def group_labels_of(metrics: Mapping[str, Mapping[str, Mapping[str, Any]]], k: int) -> list[str]:
    """Popularity-group labels found at ``@k`` in any result, in order of appearance."""
    labels: list[str] = []
    for variants in metrics.values():
        for result in variants.values():
            at_k = {key: v for key, v in result.items() if str(key).lower().endswith(f"@{k}")}
            labels += [label for label in result_group_labels(at_k) if label not in labels]
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
        f"Test split, K = {k}, seed {report.get('seed', '?')}. FAERec is the paper's model; "
        "`+ text prior` rows are the same checkpoints scored with the text prior (beyond the "
        "paper; its weight chosen on the validation split). "
        f"{IMPROVEMENT} is the relative improvement of the row above over the bare backbone; "
        "`-` marks an undefined value (e.g. an empty group).",
        f"Reproduce with:\n\n```\n{report.get('command', '')}\n```",
        "Protocol: "
        + ", ".join(f"`{key}: {value}`" for key, value in report.get("protocol", {}).items()),
        "## Overall, tail and head accuracy (Table 2)\n\n"
        + markdown_table(
            ["Backbone", "Model", *main_header],
            _metric_rows(table2_metrics(metrics), main_keys),
        ),
    ]
    table3 = ablation_rows(metrics, main_keys[:4], [f"ndcg@{k}", f"tailhit@{k}"])
    if table3:
        parts.append(
            "## Ablations (Table 3)\n\n"
            "FAERec with one part switched off (`w/o AGF`: the gate fixed at 0.5; `ILA`: "
            "item-level alignment; `FLA`: feature-level alignment; `CLS`: the curriculum; `PG`: "
            "the popularity groups of the feature-level alignment); the last two columns are "
            "relative changes against FAERec.\n\n"
            + markdown_table(
                [
                    "Backbone",
                    "Model",
                    *main_header[:4],
                    f"N@{k} vs FAERec",
                    f"Tail H@{k} vs FAERec",
                ],
                table3,
            )
        )
    parts.append(
        "## Coverage (Table 5)\n\n"
        + markdown_table(
            ["Backbone", "Model", f"Coverage@{k}", f"TailCoverage@{k}"],
            _metric_rows(metrics, coverage_keys),
        )
    )
    repeat_keys = [f"{p}{m}@{k}" for p in ("repeat", "new") for m in ("hit", "ndcg")]
    if any(
        metric_value(result, key) is not None
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
