"""A finished (or resumed) sweep's results: trial table, best config, plot and best test."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from recbole_faerec.io import atomic_write_text, json_text
from recbole_faerec.model.registry import method_title
from recbole_faerec.process import hidden_command_line
from recbole_faerec.report.plots import plot_sensitivity
from recbole_faerec.trainer import RESUME_SUFFIX, FAERecTrainer
from recbole_faerec.tune.space import Dimension
from recbole_faerec.tune.spec import SweepSpec, plain

#: Validation figure recorded per trial at its best evaluation next to the sweep's metric (the
#: paper's Figure 3 pairs NDCG@10 with the tail's H@10).
TAIL_METRIC = "tailhit@10"


def _error_line(error: BaseException | None) -> str:
    if error is None:
        return ""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__)[:200]


def _trial_params(result) -> dict[str, Any]:
    """A trial's parameters (a restored sweep may only have them in ``params.json``)."""
    if result.config:
        return result.config
    params = Path(result.path) / "params.json"
    return json.loads(params.read_text()) if params.is_file() else {}


def at_best_evaluation(result, spec: SweepSpec, key: str) -> float:
    """``key`` of a trial's validation result at its best evaluation (the first that reached its
    best ``spec.metric``, the epoch RecBole keeps); nan when the trial did not report it."""
    frame = result.metrics_dataframe
    if frame is None or key not in frame or spec.metric not in frame:
        return np.nan
    scores = pd.to_numeric(frame[spec.metric], errors="coerce")
    if not scores.notna().any():
        return np.nan
    best = scores.idxmax() if spec.mode == "max" else scores.idxmin()
    return float(frame.loc[best, key])


def trials_table(results, spec: SweepSpec, space: Mapping[str, Dimension]) -> pd.DataFrame:
    """One row per trial: parameters, best validation metric and :data:`TAIL_METRIC` at that
    evaluation, epochs run, status, error. With the text prior, a trial that trained to the end
    reports both with the main command's scorer (its best checkpoint plus its fitted prior), and
    two more columns: ``text_prior_weight`` and ``best_<metric>_without_prior``, the model alone.

    Status is ``completed`` (trained to the end or to RecBole's early stop), ``stopped``
    (stopped early by the scheduler) or ``failed`` (raised; the error column says why).
    """
    searched = [key for key, dim in space.items() if dim.searched]
    best = f"best_{spec.metric}"
    fitted = any("text_prior_weight" in (result.metrics or {}) for result in results)
    rows = []
    for result in results:
        metrics = result.metrics or {}
        if result.error is not None:
            status = "failed"
        else:
            status = "completed" if metrics.get("finished") else "stopped"
        tail = metrics.get(f"scored_{TAIL_METRIC}")
        if tail is None:
            tail = at_best_evaluation(result, spec, TAIL_METRIC)
        row = {
            "trial": metrics.get("trial_id") or Path(result.path).name,
            **{key: plain(_trial_params(result).get(key)) for key in searched},
            best: metrics.get(best, np.nan) if status != "failed" else np.nan,
            f"at_best_{TAIL_METRIC}": tail if status != "failed" else np.nan,
            "epochs": int(metrics.get("epoch", 0) or 0),
            "status": status,
            "error": _error_line(result.error),
        }
        if fitted:
            row["text_prior_weight"] = metrics.get("text_prior_weight", np.nan)
            row[f"{best}_without_prior"] = metrics.get(f"{best}_without_prior", np.nan)
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values(best, ascending=spec.mode == "min", na_position="last", kind="stable")


def trials_markdown(table: pd.DataFrame) -> str:
    """The trial table as Markdown; trial ids stay text even when they look like numbers."""
    text_columns = [table.columns.get_loc(name) for name in ("trial", "error")]
    return table.to_markdown(index=False, disable_numparse=text_columns)


def write_best_config(path: Path, spec: SweepSpec, params: Mapping[str, Any], score: float) -> Path:
    """The best trial's settings as a RecBole yaml (``--config_files`` accepts it)."""
    settings = {**spec.overrides, **{key: plain(value) for key, value in params.items()}}
    files = " ".join([*spec.config_files, str(path)])
    header = (
        f"# Best trial of the sweep over {spec.space_file}\n"
        f"# ({method_title(spec.method, spec.model)} on {spec.dataset}; "
        f"best validation {spec.metric} = {score:.6g}, scored as the command below tests).\n"
        f"# Rerun: python run_recbole_faerec.py --model={spec.model} --dataset={spec.dataset}"
        f" --method={spec.method} --config_files='{files}'\n"
    )
    path.write_text(header + yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path


def evaluate_checkpoint(model_file: str | os.PathLike, work_dir: Path) -> dict[str, float]:
    """Test-split result of a saved model (RecBole writes its log under ``work_dir``)."""
    from recbole_faerec.quick_start import load_data_and_model

    with contextlib.chdir(work_dir), hidden_command_line():
        config, net, _, train_data, _, test_data = load_data_and_model(model_file)
        trainer = FAERecTrainer(config, net)
        trainer.eval_collector.data_collect(train_data)
        result = trainer.evaluate(test_data, load_best_model=True, model_file=str(model_file))
    return {key: float(value) for key, value in result.items()}


def _best_result(results, spec: SweepSpec):
    """The best trial among those whose objective is the main command's scorer (``scored``; a
    trial stopped before its prior was fitted is not)."""
    key = f"best_{spec.metric}"
    scored = [
        r
        for r in results
        if r.error is None and key in (r.metrics or {}) and r.metrics.get("scored", True)
    ]
    if not scored:
        return None
    pick = max if spec.mode == "max" else min
    return pick(scored, key=lambda r: r.metrics[key])


def summarize(
    results, spec: SweepSpec, space: Mapping[str, Dimension], exp_dir: Path, test_best: bool = True
) -> dict[str, Any]:
    """Write the trial table, best config, plot and (``test_best``) the best trial's test."""
    metric = f"best_{spec.metric}"
    table = trials_table(results, spec, space)
    searched = [key for key, dim in space.items() if dim.searched]
    outputs: dict[str, Any] = {
        "experiment_dir": str(exp_dir),
        "trials_csv": exp_dir / "trials.csv",
        "trials_md": exp_dir / "trials.md",
        "plot": exp_dir / "sensitivity.png",
        "best_config": None,
        "best_params": None,
        "best_valid_score": None,
        "test_result": None,
        "table": table,
    }
    table.to_csv(outputs["trials_csv"], index=False)
    outputs["trials_md"].write_text(trials_markdown(table) + "\n", encoding="utf-8")
    title = f"{method_title(spec.method, spec.model)} on {spec.dataset}"
    plot_sensitivity(
        table, searched, [metric, f"at_best_{TAIL_METRIC}"], outputs["plot"], title=title
    )
    best = _best_result(results, spec)
    if best is None:
        return outputs
    config = _trial_params(best)
    params = {key: plain(config[key]) for key in space if key in config}
    score = float(best.metrics[metric])
    outputs.update(best_params=params, best_valid_score=score)
    outputs["best_config"] = write_best_config(exp_dir / "best_config.yaml", spec, params, score)
    if test_best and best.checkpoint is not None:
        with best.checkpoint.as_directory() as folder:
            files = (p for p in Path(folder).glob("*.pth") if not p.name.endswith(RESUME_SUFFIX))
            model_file = next(files, None)
            if model_file is None:
                raise FileNotFoundError(
                    f"tune: the best trial's checkpoint {folder} holds no .pth model file; fix: "
                    "rerun the sweep (or its best trial) with `saved: True` so that RecBole "
                    "writes the model file."
                )
            test_result = evaluate_checkpoint(model_file, exp_dir)
        outputs["test_result"] = test_result
        summary = {"params": params, f"valid_{metric}": score, "test_result": test_result}
        if "text_prior_weight" in best.metrics:
            summary["text_prior_weight"] = best.metrics["text_prior_weight"]
        atomic_write_text(exp_dir / "test_result.json", json_text(summary))
    return outputs
