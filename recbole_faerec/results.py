"""Plain-text results table and atomic JSON dump for evaluation results (dependency-free).

``result`` is the mapping RecBole's ``Trainer.evaluate`` returns; keys are matched
case-insensitively (``hit@10``, ``tailndcg@20``, ``grouphit[1-4]@10``, ``coverage@5``...,
see :mod:`recbole_faerec.metrics`). A metric absent from ``result`` is shown as ``-``; an
undefined value (``nan``, e.g. an empty group) is shown as ``nan`` and saved as JSON ``null``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from recbole_faerec.io import write_json

_GROUP_KEY = re.compile(r"^group(?:hit|ndcg)\[(?P<label>[^\]]+)\]@\d+$")


def _lookup(result: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in result.items()}


def _cell(values: Mapping[str, Any], key: str, digits: int) -> str:
    if key not in values or values[key] is None:
        return "-"
    return f"{float(values[key]):.{digits}f}"


def _render(rows: Sequence[Sequence[str]], first_width: int, value_width: int) -> list[str]:
    """Left-align the first column, right-align the others, two spaces between columns."""
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    widths = [max(widths[0], first_width)] + [max(w, value_width) for w in widths[1:]]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return lines


def result_group_labels(values: Mapping[str, Any]) -> list[str]:
    """Popularity-group labels of the ``group{hit,ndcg}[label]@k`` keys, in order of appearance."""
    labels: list[str] = []
    for key in values:
        match = _GROUP_KEY.match(key)
        if match and match["label"] not in labels:
            labels.append(match["label"])
    return labels


def format_results_table(
    result: Mapping[str, Any],
    topk: Sequence[int] = (5, 10, 20),
    group_k: int | None = None,
    digits: int = 4,
) -> str:
    """Compact table: overall/head/tail Hit and NDCG, coverage, and per-group rows at ``group_k``.

    ``group_k`` defaults to 10 if 10 is in ``topk``, else to ``max(topk)``.

    Example (``topk=(5, 10, 20)``)::

                    H@5    H@10    H@20     N@5    N@10    N@20
        overall  0.1000  0.2000  0.3000  0.0500  0.0800  0.0900
        head     0.2500  ...
        tail     0.0500  ...
        repeat   nan     ...
        new      0.1000  ...
        Coverage@5/10/20 0.1000/0.2000/0.3000  TailCoverage@5/10/20 0.0500/-/0.1000
        group      H@10    N@10
        1-4      0.0100  0.0050

    The group block lists the popularity bins found in ``result``, in order of appearance, and
    is omitted when there are none.
    """
    values = _lookup(result)
    ks = list(topk)
    if group_k is None:
        group_k = 10 if 10 in ks else max(ks)
    rows = [["", *[f"H@{k}" for k in ks], *[f"N@{k}" for k in ks]]]
    for label, prefix in (
        ("overall", ""),
        ("head", "head"),
        ("tail", "tail"),
        ("repeat", "repeat"),
        ("new", "new"),
    ):
        hits = [_cell(values, f"{prefix}hit@{k}", digits) for k in ks]
        ndcgs = [_cell(values, f"{prefix}ndcg@{k}", digits) for k in ks]
        rows.append([label, *hits, *ndcgs])
    value_width = len(f"{0:.{digits}f}")
    lines = _render(rows, len("overall"), value_width)

    ks_label = "/".join(str(k) for k in ks)
    coverage = "/".join(_cell(values, f"coverage@{k}", digits) for k in ks)
    tail_coverage = "/".join(_cell(values, f"tailcoverage@{k}", digits) for k in ks)
    lines.append(f"Coverage@{ks_label} {coverage}  TailCoverage@{ks_label} {tail_coverage}")

    labels = result_group_labels(values)
    if labels:
        group_rows = [["group", f"H@{group_k}", f"N@{group_k}"]]
        for label in labels:
            group_rows.append(
                [
                    label,
                    _cell(values, f"grouphit[{label}]@{group_k}", digits),
                    _cell(values, f"groupndcg[{label}]@{group_k}", digits),
                ]
            )
        lines += _render(group_rows, len("overall"), value_width)
    return "\n".join(lines)


def save_results_json(
    result: Mapping[str, Any], path: str | os.PathLike[str], **extra: Any
) -> Path:
    """Write ``{"metrics": result, **extra}`` as JSON atomically (temp file + ``os.replace``).

    Floats are written as plain numbers; ``nan``/``inf`` become ``null``. Parent directories are
    created. Returns the written path.
    """
    if "metrics" in extra:
        raise ValueError("'metrics' is reserved for the result mapping")
    return write_json(path, {"metrics": dict(result), **extra})
