"""Running a report: every variant of every backbone, resumable, then the report files."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from recbole_faerec.config import PROPERTIES_DIR
from recbole_faerec.io import atomic_open
from recbole_faerec.popularity import DEFAULT_HEAD_RATIO
from recbole_faerec.process import hidden_command_line
from recbole_faerec.quick_start import (
    load_data_and_model,
    rescore_saved_run,
    run_recbole_faerec,
)
from recbole_faerec.report.plots import item_views, plot_groups, plot_tsne
from recbole_faerec.report.tables import (
    FAEREC,
    LLMESR,
    MODEL_VARIANTS,
    PRIOR_ROWS,
    VALID_METRIC,
    format_report_markdown,
    method_name,
    method_variants,
    metric_value,
    value_cell,
)
from recbole_faerec.results import save_results_json

ABLATIONS: dict[str, dict[str, Any]] = {
    "w/o AGF": {"fusion": "sum"},
    "w/o ILA": {"item_alignment": False},
    "w/o FLA": {"feature_alignment": False},
    "w/o CLS": {"curriculum": False},
    "w/o PG": {"popularity_groups": False},
}

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

_SETTING_FILES = (
    "metrics.yaml",
    "embedding.yaml",
    "protocol.yaml",
    "text_prior.yaml",
    "model/FAERec.yaml",
)

_JSON_TYPES = (str, int, float, bool, type(None), list, tuple, dict)


def _say(message: str) -> None:
    tqdm.write(f"[report] {message}", file=sys.stderr)


def _setting_keys(overrides: Mapping[str, Any]) -> list[str]:
    """Keys worth recording: a fixed protocol list, the plugin's yaml keys and the overrides, but
    not ``resume`` (where an interrupted run continued from, not how it was set)."""
    import yaml

    keys = list(_SETTING_KEYS)
    for name in _SETTING_FILES:
        path = PROPERTIES_DIR / name
        if path.is_file():
            keys += list(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    keys += list(overrides)
    return [key for key in dict.fromkeys(keys) if key != "resume"]


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
    methods: Sequence[str] = MODEL_VARIANTS,
) -> str:
    """The command line that reproduces a report. ``methods`` (the report's variants, in
    :data:`~.tables.MODEL_VARIANTS` order) appear as ``--methods`` only when not all four, so
    that the reports written before the LLM baselines keep their command (and resume)."""
    args = ["python", "-m", "recbole_faerec.report", "--dataset", dataset]
    args += ["--model", ",".join(backbones), "--out", str(out)]
    if config_file_list:
        args += ["--config_files", " ".join(str(f) for f in config_file_list)]
    if list(methods) != list(MODEL_VARIANTS):
        args += ["--methods", ",".join(method_name(v) for v in methods)]
    if ablations:
        args.append("--ablations")
    args += ["--tsne-items", str(tsne_items)]
    args += [f"--{key}={_cli_value(value)}" for key, value in overrides.items()]
    return shlex.join(args)


def finished_runs(path: Path, command: str) -> tuple[dict, dict, dict, dict, dict]:
    """Metrics, wall times, model files, validation records and per-backbone settings of the
    runs that a report with the same ``command`` already finished and recorded in ``path``
    (``results.json``); empty when there are none. An undefined metric reads back as None, which
    the tables and plots treat like nan."""
    if not path.is_file():
        return {}, {}, {}, {}, {}
    saved = json.loads(path.read_text(encoding="utf-8"))
    if saved.get("command") != command:
        return {}, {}, {}, {}, {}
    return (
        saved.get("metrics", {}),
        saved.get("wall_time_s", {}),
        saved.get("model_files", {}),
        saved.get("validation", {}),
        saved.get("settings", {}),
    )


def item_views_path(out_dir: Path, backbone: str) -> Path:
    """Where the report keeps the t-SNE sample of a backbone's FAERec item views."""
    return out_dir / f"item_views-{backbone}.npz"


def save_item_views(path: Path, views: Mapping[str, np.ndarray]) -> None:
    """Write ``views`` (:func:`~.plots.item_views`) atomically as a compressed ``.npz``."""
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, **views)


def load_item_views(path: Path) -> dict[str, np.ndarray]:
    """The views that :func:`save_item_views` wrote."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def scored_rows(variant: str, result: Mapping[str, Any]) -> dict[str, dict]:
    """The report rows of one run: its test metrics without the text prior under ``variant``
    and, for the runs of :data:`PRIOR_ROWS`, with it under the prior's row."""
    prior = result.get("text_prior")
    if prior is None:
        return {variant: dict(result["test_result"])}
    without = prior["test_result_without"] or result["test_result"]
    rows = {variant: dict(without)}
    if variant in PRIOR_ROWS:
        rows[PRIOR_ROWS[variant]] = dict(result["test_result"])
    return rows


def validation_record(result: Mapping[str, Any], valid_metric: str) -> dict[str, Any]:
    """A run's best validation ``valid_metric`` (the model alone, which selects the epoch) and
    the text prior's weight and validation score per weight tried."""
    record = {valid_metric: metric_value(result["best_valid_result"], valid_metric)}
    if result.get("text_prior") is not None:
        record["text_prior_weight"] = result["text_prior"]["weight"]
        record["text_prior_valid_scores"] = result["text_prior"]["valid_scores"]
    return record


def faerec_views(
    model_file: str, views_file: Path, keys: Sequence[str], tsne_items: int
) -> dict[str, Any]:
    """Write the t-SNE sample of the item views of the FAERec checkpoint ``model_file`` to
    ``views_file``; returns the run's settings (``keys``)."""
    config, model, *_ = load_data_and_model(model_file)
    head_ratio = config["head_ratio"] if "head_ratio" in config else None
    views = item_views(model, tsne_items, config["seed"], head_ratio or DEFAULT_HEAD_RATIO)
    save_item_views(views_file, views)
    return effective_settings(config, keys)


def run_settings(model_file: str, keys: Sequence[str]) -> dict[str, Any]:
    """The settings (``keys``) of the run saved in ``model_file``: those of a report without a
    FAERec run, which has no item views to sample."""
    config, *_ = load_data_and_model(model_file)
    return effective_settings(config, keys)


def write_markdown(out_dir: Path, report: Mapping[str, Any]) -> None:
    """Write ``results.md`` of ``report`` (the ``results.json`` mapping) atomically; a partial
    report (``complete: False``) says so."""
    with atomic_open(out_dir / "results.md", "w") as handle:
        handle.write(format_report_markdown(report))


def run_folder(runs_dir: Path, backbone: str, variant: str) -> Path:
    """The checkpoint folder of one run of a report (``variant`` around ``backbone``)."""
    return runs_dir / f"{backbone}-{re.sub(r'[^A-Za-z0-9]+', '-', variant).strip('-')}"


def train_run(
    backbone: str,
    dataset: str,
    config_file_list: Sequence[str] | None,
    config_dict: Mapping[str, Any],
    variant: str,
    folder: Path,
    continue_state: bool = False,
) -> dict[str, Any]:
    """Train and test one run of the report: ``variant``'s method around ``backbone`` (FAERec for
    an ablation), named by the plugin's method switch. Its checkpoints go to ``folder``; with
    ``continue_state``, a run interrupted there continues from its last per-epoch state."""
    method = method_name(variant) if variant in MODEL_VARIANTS else method_name(FAEREC)
    settings = {**config_dict, "checkpoint_dir": str(folder)}
    states = sorted(folder.glob("*-resume.pth"), key=os.path.getmtime)
    if continue_state and states:
        settings["resume"] = str(states[-1])
        _say(f"{backbone} {variant}: continues from {states[-1]}")
    return run_recbole_faerec(
        backbone, dataset, config_file_list, settings, saved=True, method=method
    )


def training_order(variants: Sequence[str], backbones: Sequence[str]) -> list[tuple[str, str]]:
    """``(variant, backbone)`` in the order a report trains them: every method around one backbone
    before the next backbone (LLM-ESR, many times slower than the others, last of them), then the
    ablations; an interrupted report has the whole comparison of its first backbones."""
    methods = [v for v in variants if v in MODEL_VARIANTS and v != LLMESR]
    methods += [v for v in variants if v == LLMESR]
    ablations = [v for v in variants if v not in MODEL_VARIANTS]
    return [(v, b) for b in backbones for v in methods] + [
        (v, b) for v in ablations for b in backbones
    ]


def _run_order(rows: Mapping[str, Any], variants: Sequence[str]) -> dict[str, Any]:
    """A backbone's rows in the order of its runs (each method's row, then its prior's), whatever
    the order they were kept or trained in."""
    order = [row for v in variants for row in (v, PRIOR_ROWS.get(v)) if row in rows]
    return {row: rows[row] for row in [*order, *(r for r in rows if r not in order)]}


def run_report(
    dataset: str,
    backbones: Sequence[str],
    out: str | os.PathLike[str] | None = None,
    config_file_list: Sequence[str] | None = None,
    config_dict: Mapping[str, Any] | None = None,
    ablations: bool = False,
    tsne_items: int = 1000,
    resume: bool = False,
    rescore: bool = False,
    methods: Sequence[str] | str | None = None,
) -> dict[str, Any]:
    """Train every method (and ablation) of every backbone, then write the report files; returns
    the JSON dict.

    ``methods`` names the methods to train (``bare``, ``llminit``, ``llmesr``, ``faerec``; a
    list or a comma-separated string; default all four), each scored with and without the text
    prior; ``ablations`` adds FAERec with each Table 3 switch off (it needs ``faerec``).
    ``results.json`` is rewritten (atomically) after every finished run, and the t-SNE sample of
    each backbone's FAERec item views is written beside it (``item_views-<backbone>.npz``). With
    ``resume``, the runs that the same command already finished are kept instead of trained
    again, whether or not their model files are still on disk (a FAERec run needs its model file
    or its saved views); only the missing runs are trained, and a run that was cut off continues
    from its last per-epoch state (each run keeps its checkpoints in a folder of its own under
    ``saved/reports/``, named by the command). ``rescore`` (implies ``resume``)
    keeps their trained weights but fits their scoring again with this code
    (:func:`~recbole_faerec.quick_start.rescore_saved_run`: the text prior of the runs that have
    one), so that a change to the prior reaches a report without training anything.
    """
    backbones = list(backbones)
    chosen = method_variants(methods)
    if ablations and FAEREC not in chosen:
        raise ValueError(
            "--ablations switch parts of FAERec off; fix: add faerec to --methods or drop "
            "--ablations."
        )
    overrides = dict(config_dict or {})
    out_dir = Path(out or Path("reports") / f"{dataset}-{'_'.join(backbones)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    variants = {
        **{variant: {"text_prior": True} for variant in chosen},
        **(
            {name: {**switches, "text_prior": False} for name, switches in ABLATIONS.items()}
            if ablations
            else {}
        ),
    }
    # The run whose settings the report records: FAERec's (with its item views), else the first.
    settings_variant = FAEREC if FAEREC in variants else chosen[0]
    command = report_command(
        dataset, backbones, out_dir, config_file_list, overrides, ablations, tsne_items, chosen
    )
    keys = _setting_keys(overrides)
    # Each run's checkpoints in a folder of its own, named by the command, so that --resume
    # continues an interrupted run from its last epoch.
    digest = hashlib.sha1(command.encode("utf-8")).hexdigest()[:8]
    runs_dir = (
        Path(overrides.get("checkpoint_dir") or "saved") / "reports" / f"{out_dir.name}-{digest}"
    )
    results_path = out_dir / "results.json"
    metrics: dict[str, dict[str, Any]] = {}
    walls: dict[str, dict[str, float]] = {}
    files: dict[str, dict[str, str | None]] = {}
    validation: dict[str, dict[str, Any]] = {}
    settings: dict[str, dict[str, Any]] = {}
    if resume or rescore:
        metrics, walls, files, validation, settings = finished_runs(results_path, command)
    views: dict[str, dict[str, np.ndarray]] = {}

    def report_fields() -> dict[str, Any]:
        """Everything ``results.json`` holds besides the metrics; the header (protocol, seed,
        k...) once the first backbone's settings are known, so a partial report reads too."""
        fields: dict[str, Any] = {
            "wall_time_s": walls,
            "model_files": files,
            "validation": validation,
            "settings": settings,
        }
        first = settings.get(backbones[0])
        if first is not None:
            topk = first.get("topk") or [10]
            fields |= {
                "protocol": {key: first.get(key) for key in PROTOCOL_KEYS},
                "dataset": dataset,
                "backbones": backbones,
                "variants": list(next(iter(metrics.values()))),
                "k": 10 if 10 in topk else max(topk),
                "seed": first["seed"],
                "overrides": overrides,
                "config_files": [str(f) for f in config_file_list or []],
                "machine": machine_info(),
            }
        return {**fields, "command": command}

    def save_partial() -> None:
        """``results.json`` of the runs finished so far and, once its header is known, a
        ``results.md`` that says it is partial."""
        fields = report_fields()
        save_results_json(metrics, results_path, complete=False, **fields)
        if "k" in fields:
            write_markdown(out_dir, {"metrics": metrics, "complete": False, **fields})

    if metrics:  # resumed: the kept runs in today's format before anything trains
        save_partial()

    progress = tqdm(total=len(backbones) * (len(variants) + 1), desc="report", unit="run")
    with progress, hidden_command_line():
        for variant, backbone in training_order(list(variants), backbones):
            switches = variants[variant]
            views_file = item_views_path(out_dir, backbone)
            progress.set_postfix_str(f"{backbone} {variant}")
            done = files.get(backbone, {}).get(variant)
            on_disk = bool(done) and Path(done).is_file()
            kept = variant in metrics.get(backbone, {})
            if variant == settings_variant and not on_disk:
                kept = kept and backbone in settings
                kept = kept and (variant != FAEREC or views_file.is_file())
            if kept and not (rescore and variant in PRIOR_ROWS):
                _say(f"{backbone} {variant}: kept from {results_path}")
                progress.update()
                continue
            start = time.perf_counter()
            if kept and on_disk:
                result = rescore_saved_run(done)
                _say(f"{backbone} {variant}: scoring fitted again on {done}")
            else:
                result = train_run(
                    backbone,
                    dataset,
                    config_file_list,
                    {**overrides, **switches},
                    variant,
                    run_folder(runs_dir, backbone, variant),
                    continue_state=resume or rescore,
                )
                wall = time.perf_counter() - start + result.get("seconds_before_resume", 0.0)
                walls.setdefault(backbone, {})[variant] = wall
            rows = {**metrics.get(backbone, {}), **scored_rows(variant, result)}
            metrics[backbone] = _run_order(rows, list(variants))
            files.setdefault(backbone, {})[variant] = result["model_file"]
            validation.setdefault(backbone, {})[variant] = validation_record(result, VALID_METRIC)
            if variant == FAEREC:
                model_file = result["model_file"]
                settings[backbone] = faerec_views(model_file, views_file, keys, tsne_items)
            elif variant == settings_variant:
                settings[backbone] = run_settings(result["model_file"], keys)
            save_partial()
            hit = metric_value(result["test_result"], "hit@10")
            _say(
                f"{backbone} {variant}: {time.perf_counter() - start:.1f}s, "
                f"test H@10 {value_cell(hit)}"
            )
            progress.update()
        for backbone in backbones:
            metrics[backbone] = _run_order(metrics[backbone], list(variants))
            progress.set_postfix_str(f"{backbone} embeddings")
            views_file = item_views_path(out_dir, backbone)
            if FAEREC in variants:
                if not (views_file.is_file() and backbone in settings):  # from an older report
                    settings[backbone] = faerec_views(
                        files[backbone][FAEREC], views_file, keys, tsne_items
                    )
                views[backbone] = load_item_views(views_file)
            elif backbone not in settings:
                settings[backbone] = run_settings(files[backbone][settings_variant], keys)
            progress.update()
    extra = report_fields()
    save_results_json(metrics, results_path, complete=True, **extra)
    report = {"metrics": metrics, **extra}
    write_markdown(out_dir, report)
    plot_groups(report, out_dir / "groups.png")
    written = ["results.json", "results.md", "groups.png"]
    if views:  # FAERec's item views; a report without FAERec has none
        _say(f"t-SNE of {tsne_items} items per backbone")
        plot_tsne(views, out_dir / "tsne.png", extra["seed"])
        written.append("tsne.png")
    _say(f"wrote {', '.join(f'{out_dir}/{name}' for name in written)}")
    return report
