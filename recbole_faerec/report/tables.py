"""The report's Markdown (``results.md``): Table 2 layout, coverage, groups and wall times."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from recbole_faerec.model.registry import METHOD_LABELS
from recbole_faerec.results import result_group_labels

#: The report's rows of the four methods, models alone: the bare backbone, the LLM-enhanced
#: baselines LLMInit and LLM-ESR, and FAERec (the order of the paper's Table 2).
BASE, LLMINIT, LLMESR, FAEREC = "base", "llminit", "llmesr", "faerec"
MODEL_VARIANTS = (BASE, LLMINIT, LLMESR, FAEREC)
#: The methods FAERec is compared with in the ``Impr.`` row.
BASELINES = (BASE, LLMINIT, LLMESR)
#: ``--methods`` names (those of the plugin's method switch) -> the report's row of each.
METHOD_ROWS = {"bare": BASE, "llminit": LLMINIT, "llmesr": LLMESR, "faerec": FAEREC}
#: The rows of the same runs scored with the text prior (:mod:`recbole_faerec.text_prior`).
PRIOR_ROWS = {variant: f"{variant}+prior" for variant in MODEL_VARIANTS}
BASE_PRIOR, LLMINIT_PRIOR, LLMESR_PRIOR, FAEREC_PRIOR = PRIOR_ROWS.values()
#: Rows that get an improvement row over the bare backbone (outside Table 2, which has ``Impr.``).
ATTRIBUTED = (BASE_PRIOR, FAEREC, FAEREC_PRIOR)
#: The rows of Table 2 in its order: the models alone, then with the text prior; any other
#: variant is a Table 3 ablation (FAERec with one switch off).
TABLE2_VARIANTS = (*MODEL_VARIANTS, *PRIOR_ROWS.values())
_LABELS = {METHOD_ROWS[method]: label for method, label in METHOD_LABELS.items()}

IMPROVEMENT = "Improv."
#: The validation figure recorded per run (the early-stopping metric of the protocol yaml).
VALID_METRIC = "ndcg@10"
#: The paper's row: FAERec's relative improvement over the best baseline of each column.
BEST_BASELINE_IMPROVEMENT = "Impr."


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
    """Row label: the backbone's name for ``base``, ``LLMInit``, ``LLM-ESR``, ``FAERec``,
    ``FAERec w/o ...``, and `` + text prior`` after a method for its row scored with the text
    prior."""
    for model, prior in PRIOR_ROWS.items():
        if variant == prior:
            return f"{variant_label(backbone, model)} + text prior"
    if variant == BASE:
        return backbone
    return _LABELS.get(variant, f"FAERec {variant}")


def method_variants(methods: str | Sequence[str] | None) -> list[str]:
    """Method names (``"bare,faerec"`` or ``["bare", "faerec"]``) -> the report's rows of the
    models alone (``["base", "faerec"]``), in :data:`MODEL_VARIANTS` order whatever the order
    given; None -> all four. A clear error names ``--methods`` otherwise."""
    if methods is None:
        return list(MODEL_VARIANTS)
    text = methods if isinstance(methods, str) else ",".join(methods)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METHOD_ROWS]
    if not names or unknown:
        raise ValueError(
            f"--methods: {text!r} names {', '.join(map(repr, unknown)) or 'no method'}; "
            f"fix: a comma-separated list of {', '.join(METHOD_ROWS)}."
        )
    chosen = {METHOD_ROWS[name] for name in names}
    return [variant for variant in MODEL_VARIANTS if variant in chosen]


def method_name(variant: str) -> str:
    """The ``--methods`` name of a method's row (``base`` -> ``bare``)."""
    return {v: name for name, v in METHOD_ROWS.items()}[variant]


def table2_order(variants: Sequence[str]) -> list[str]:
    """``variants`` with the Table 2 rows in :data:`TABLE2_VARIANTS` order first, then the rest
    (the ablations) in their own order."""
    return [v for v in TABLE2_VARIANTS if v in variants] + [
        v for v in variants if v not in TABLE2_VARIANTS
    ]


def best_baseline_improvement(
    variants: Mapping[str, Mapping[str, Any]], keys: Sequence[str], with_prior: bool = False
) -> list[float | None] | None:
    """Per key, FAERec's relative improvement (%) over the best of the baselines present (the
    bare backbone, LLMInit, LLM-ESR, models alone), as the paper's ``Impr.`` row; with
    ``with_prior``, FAERec + text prior over the best baseline + text prior. None when FAERec or
    every baseline is missing."""

    def row(variant: str) -> str:
        return PRIOR_ROWS[variant] if with_prior else variant

    baselines = [variants[row(v)] for v in BASELINES if row(v) in variants]
    if row(FAEREC) not in variants or not baselines:
        return None
    gains = []
    for key in keys:
        values = [metric_value(result, key) for result in baselines]
        known = [value for value in values if value is not None]
        best = max(known) if known else None
        gains.append(relative_improvement(best, metric_value(variants[row(FAEREC)], key)))
    return gains


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 2
) -> str:
    """GitHub markdown table, the first ``text_columns`` left-aligned, the rest right-aligned."""
    align = [":--" if i < text_columns else "--:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _metric_rows(
    metrics: Mapping[str, Mapping[str, Mapping[str, Any]]],
    keys: Sequence[str],
    paper_row: bool = False,
) -> list[list[str]]:
    """Per backbone, every variant's row in :func:`table2_order`; after each attributed row (the
    text prior's and FAERec's), its relative improvement over the bare backbone. With
    ``paper_row`` (Table 2), FAERec's row is followed by the paper's ``Impr.`` row instead (over
    the best baseline; the same when the bare backbone is the only one)."""
    rows = []
    for backbone, variants in metrics.items():
        for variant in table2_order(list(variants)):
            values = [metric_value(variants[variant], key) for key in keys]
            rows.append([backbone, variant_label(backbone, variant), *map(value_cell, values)])
            if paper_row and variant == FAEREC:
                gains = best_baseline_improvement(variants, keys)
                if gains is not None:
                    rows.append([backbone, BEST_BASELINE_IMPROVEMENT, *map(_percent_cell, gains)])
            elif variant in ATTRIBUTED and BASE in variants:
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


def validation_pick(
    report: Mapping[str, Any], backbone: str, valid_metric: str = VALID_METRIC
) -> dict[str, Any] | None:
    """The row of ``backbone`` that validation picks: the best validation ``valid_metric`` over
    every method's row, alone (the run's ``validation`` record) and with the text prior (its
    validation score at the weight it chose). Returns ``{"variant", "valid", "test", "ratio"}``
    (its test ``valid_metric`` and that over the bare backbone's), or None without validation
    records. A tie goes to the row listed first (the model alone, then the bare backbone)."""
    validation = report.get("validation", {}).get(backbone, {})
    results = report["metrics"].get(backbone, {})
    scores: dict[str, float | None] = {}
    for model in MODEL_VARIANTS:
        record = validation.get(model)
        if record is not None and model in results:
            scores[model] = _number(record.get(valid_metric))
    for model, prior in PRIOR_ROWS.items():
        record = validation.get(model) or {}
        if prior in results and record.get("text_prior_weight") is not None:
            weight = f"{float(record['text_prior_weight']):g}"
            scores[prior] = _number(record.get("text_prior_valid_scores", {}).get(weight))
    best = None
    for variant, score in scores.items():
        if score is not None and (best is None or score > scores[best]):
            best = variant
    if best is None:
        return None
    test = metric_value(results[best], valid_metric)
    bare = metric_value(results[BASE], valid_metric) if BASE in results else None
    ratio = None if test is None or not bare else test / bare
    return {"variant": best, "valid": scores[best], "test": test, "ratio": ratio}


def validation_pick_text(backbone: str, pick: Mapping[str, Any], title: str = "N@10") -> str:
    """``"<row> (validation N@10 x; its test N@10 y, Zx the bare backbone's)"``."""
    ratio = "" if pick["ratio"] is None else f", {pick['ratio']:.2f}x the bare backbone's"
    return (
        f"{variant_label(backbone, pick['variant'])} (validation {title} "
        f"{value_cell(pick['valid'])}; its test {title} {value_cell(pick['test'])}{ratio})"
    )


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
        f"Test split, K = {k}, seed {report.get('seed', '?')}. FAERec is the paper's model, "
        "LLMInit and LLM-ESR its LLM-enhanced baselines around the same backbone; "
        "`+ text prior` rows are the same checkpoints scored with the text prior (beyond the "
        "paper; its weight chosen on the validation split). "
        f"{BEST_BASELINE_IMPROVEMENT} (Table 2, as in the paper) is FAERec's relative "
        "improvement over the best baseline of each column (the bare backbone, LLMInit, "
        "LLM-ESR, models alone, those the report ran); "
        f"{IMPROVEMENT} is the relative improvement of the row above over the bare backbone; "
        "`-` marks an undefined value (e.g. an empty group).",
        *(
            []
            if report.get("complete", True)
            else [
                "**Partial report**: the runs finished so far; the same command with `--resume` "
                "trains the rest and writes the figures."
            ]
        ),
        f"Reproduce with:\n\n```\n{report.get('command', '')}\n```",
        "Protocol: "
        + ", ".join(f"`{key}: {value}`" for key, value in report.get("protocol", {}).items()),
        "## Overall, tail and head accuracy (Table 2)\n\n"
        + markdown_table(
            ["Backbone", "Model", *main_header],
            _metric_rows(table2_metrics(metrics), main_keys, paper_row=True),
        ),
    ]
    picks = [(b, validation_pick(report, b)) for b in metrics]
    pick_rows = [
        [
            backbone,
            variant_label(backbone, pick["variant"]),
            value_cell(pick["valid"]),
            value_cell(pick["test"]),
            "-" if pick["ratio"] is None else f"{pick['ratio']:.2f}x",
        ]
        for backbone, pick in picks
        if pick is not None
    ]
    if pick_rows:
        parts.append(
            "## The row validation picks\n\n"
            "Per backbone, the row with the best validation N@10 over every method, with and "
            "without the text prior: the one to deploy.\n\n"
            + markdown_table(
                ["Backbone", "Picked", "Validation N@10", "Test N@10", "Test N@10 / bare"],
                pick_rows,
            )
        )
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
