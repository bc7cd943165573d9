"""Ray Tune sweeps of FAERec (or a bare backbone) over a yaml search space.

Every Ray call of the plugin lives in this module: a newer Ray only needs :func:`_report` (and
the few imports below) adjusted. Tested with ray 2.6.3, RecBole's cap.

A sweep runs on a local Ray instance (started and stopped here) or joins a running cluster
(``ray_address``). Each trial trains through the plugin's RecBole pipeline and reports the
validation metric and the loss parts after every evaluation, so ASHA can stop weak trials early.
Only the best trial is tested, once, with its best checkpoint. Results land in the experiment
folder ``<storage_path>/<name>``: ``trials.csv``/``trials.md`` (all trials), ``best_config.yaml``
(a RecBole yaml for ``--config_files``), ``sensitivity.png`` and ``test_result.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from ray import air, tune
from ray.air import session
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from recbole_faerec.compat import worker_env
from recbole_faerec.config import build_config, split_config_files
from recbole_faerec.io import atomic_write_text, json_text, parse_overrides
from recbole_faerec.pipeline import load_dataset, prepare_run
from recbole_faerec.process import hidden_command_line, init_logger
from recbole_faerec.trainer import FAERecTrainer

DISTRIBUTIONS = ("grid", "choice", "uniform", "loguniform", "randint", "constant")
SCHEDULERS = ("asha", "fifo")
SPEC_FILE = "sweep.json"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# Keys a trial sets itself: sweeping them would break the run's bookkeeping.
# Config keys holding paths: made absolute on the driver, as trials run in their own folders.
PATH_KEYS = ("llm_embedding_file", "embedding_cache_dir", "embedding_model", "prompt_template")
RESERVED_KEYS = ("model", "dataset", "backbone", "data_path", "checkpoint_dir", "gpu_id")


class SearchSpaceError(ValueError):
    """A malformed search-space file or entry."""


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One entry of a search space: a distribution ``kind`` and its ``value`` (list/bounds)."""

    kind: str
    value: Any

    @property
    def searched(self) -> bool:
        """True unless the entry is a constant."""
        return self.kind != "constant"


def _kinds_hint() -> str:
    return (
        "valid kinds: grid: [v1, ...], choice: [v1, ...], uniform: [lo, hi], "
        "loguniform: [lo, hi] (lo > 0), randint: [lo, hi] (both included), constant: value; "
        "a plain scalar or list is a constant"
    )


def _parse_entry(key: str, raw: Any, source: str) -> Dimension:
    def fail(problem: str) -> SearchSpaceError:
        return SearchSpaceError(f"{source}: key '{key}': {problem} ({_kinds_hint()})")

    if not isinstance(raw, Mapping):
        return Dimension("constant", raw)
    if len(raw) != 1:
        raise fail(f"expected exactly one distribution, got {sorted(map(str, raw))}")
    kind, value = next(iter(raw.items()))
    if kind not in DISTRIBUTIONS:
        raise fail(f"unknown distribution '{kind}'")
    if kind == "constant":
        return Dimension(kind, value)
    if not isinstance(value, list) or not value:
        raise fail(f"'{kind}' needs a non-empty list, got {value!r}")
    if kind in ("grid", "choice"):
        return Dimension(kind, list(value))
    if len(value) != 2:
        raise fail(f"'{kind}' needs [lo, hi], got {value!r}")
    lo, hi = value
    number = int if kind == "randint" else (int, float)
    if any(isinstance(v, bool) or not isinstance(v, number) for v in value):
        wanted = "integers" if kind == "randint" else "numbers"
        raise fail(f"'{kind}' bounds must be {wanted}, got {value!r}")
    if not lo < hi:
        raise fail(f"'{kind}' needs lo < hi, got {value!r}")
    if kind == "loguniform" and lo <= 0:
        raise fail(f"'loguniform' needs lo > 0, got {value!r}")
    return Dimension(kind, [lo, hi])


def parse_search_space(spec: Any, source: str = "<search space>") -> dict[str, Dimension]:
    """Validate a search-space mapping (config key -> distribution or constant)."""
    if not isinstance(spec, Mapping) or not spec:
        raise SearchSpaceError(
            f"{source}: a search space is a non-empty mapping of config keys ({_kinds_hint()})"
        )
    space = {}
    for key, raw in spec.items():
        if not isinstance(key, str):
            raise SearchSpaceError(f"{source}: key {key!r} is not a config key name")
        if key in RESERVED_KEYS:
            raise SearchSpaceError(
                f"{source}: key '{key}' is set by the sweep itself and cannot be searched"
            )
        space[key] = _parse_entry(key, raw, source)
    return space


def load_search_space(path: str | os.PathLike) -> dict[str, Dimension]:
    """Read and validate a search-space yaml (see ``properties/tune/``)."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SearchSpaceError(f"{path}: cannot read the search space: {exc}") from exc
    return parse_search_space(spec, str(path))


def ray_param_space(space: Mapping[str, Dimension]) -> dict[str, Any]:
    """The Ray Tune ``param_space`` of a parsed search space."""
    makers = {
        "grid": tune.grid_search,
        "choice": tune.choice,
        "uniform": lambda b: tune.uniform(*b),
        "loguniform": lambda b: tune.loguniform(*b),
        "randint": lambda b: tune.randint(b[0], b[1] + 1),
        "constant": lambda v: v,
    }
    return {key: makers[dim.kind](dim.value) for key, dim in space.items()}


@dataclasses.dataclass
class SweepSpec:
    """Everything a trial needs besides its sampled parameters (JSON-serialisable)."""

    model: str
    dataset: str
    base: bool
    space_file: str
    config_files: list[str]
    overrides: dict[str, Any]
    data_path: str
    seed: int
    metric: str
    mode: str
    max_t: int
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0

    def save(self, folder: Path) -> None:
        """Write the spec to ``folder/sweep.json`` (read back by :meth:`load` on resume)."""
        (folder / SPEC_FILE).write_text(json.dumps(dataclasses.asdict(self), indent=2))

    @classmethod
    def load(cls, folder: Path) -> SweepSpec:
        """The spec saved in an experiment folder."""
        return cls(**json.loads((folder / SPEC_FILE).read_text()))


def _plain(value: Any) -> Any:
    """numpy scalars (Ray's samples) as Python values, for yaml and JSON."""
    return value.item() if isinstance(value, np.generic) else value


class _ReportingTrainer(FAERecTrainer):
    """FAERecTrainer that keeps the last epoch's loss parts and validation result."""

    last_losses: tuple[float, ...] = ()
    last_valid_result: dict[str, float] = {}

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        losses = super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)
        self.last_losses = tuple(losses) if isinstance(losses, tuple) else (losses,)
        return losses

    def _valid_epoch(self, valid_data, show_progress=False):
        score, result = super()._valid_epoch(valid_data, show_progress)
        self.last_valid_result = dict(result)
        return score, result


def _report(metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
    """The single Ray reporting call (Ray >= 2.7: ``ray.train.report(metrics, ...)``)."""
    checkpoint = air.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
    session.report(metrics, checkpoint=checkpoint)


def trial_config_dict(spec: SweepSpec, params: Mapping[str, Any], trial_dir: str) -> dict:
    """RecBole ``config_dict`` of one trial: overrides, sampled parameters, absolute paths."""
    return {
        **spec.overrides,
        **{key: _plain(value) for key, value in params.items()},
        "seed": _plain(params.get("seed", spec.seed)),
        "data_path": spec.data_path,
        "checkpoint_dir": str(Path(trial_dir) / "saved"),
    }


def loss_metrics(names: Sequence[str], losses: Sequence[float]) -> dict[str, float]:
    """``train_loss`` (the sum) and one ``train_loss_<name>`` per named part."""
    metrics = {"train_loss": float(sum(losses))}
    if len(losses) > 1:
        labels = names if len(names) == len(losses) else [str(i) for i in range(len(losses))]
        metrics.update({f"train_loss_{n}": float(v) for n, v in zip(labels, losses, strict=True)})
    return metrics


def faerec_trial(params: dict[str, Any], spec: SweepSpec) -> None:
    """Ray Tune trainable: train one configuration, reporting after every evaluation."""
    import ray
    import torch

    torch.set_num_threads(max(1, int(spec.cpus_per_trial)))
    config_dict = trial_config_dict(spec, params, session.get_trial_dir())
    config_dict["gpu_id"] = ",".join(str(i) for i in ray.get_gpu_ids())
    with hidden_command_line():
        config = build_config(
            spec.model, spec.dataset, spec.config_files, config_dict, base=spec.base
        )
    init_logger(config)
    _, train_data, valid_data, _, net, trainer = prepare_run(config, _ReportingTrainer)
    names = list(getattr(net, "loss_names", None) or [])

    def report(epoch_idx: int, valid_score: float) -> None:
        metrics = {
            **trainer.last_valid_result,
            spec.metric: float(valid_score),
            f"best_{spec.metric}": float(trainer.best_valid_score),
            "epoch": epoch_idx + 1,
            "finished": epoch_idx + trainer.eval_step >= trainer.epochs
            or trainer.cur_step > trainer.stopping_step,
            **loss_metrics(names, trainer.last_losses),
        }
        improved = trainer.cur_step == 0
        _report(metrics, trainer.checkpoint_dir if improved else None)

    trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=report)


def absolute_paths(config: Any) -> dict[str, str]:
    """Relative path settings of ``config`` made absolute (file settings only when they exist:
    ``embedding_model`` and ``prompt_template`` may also be a model name or a template)."""
    paths = {}
    for key in PATH_KEYS:
        value = config[key] if key in config else None
        if not isinstance(value, str) or not value or Path(value).is_absolute():
            continue
        if key in ("llm_embedding_file", "embedding_cache_dir") or Path(value).exists():
            paths[key] = str(Path(value).resolve())
    return paths


def prepare_sweep(
    space_file: str | os.PathLike,
    model: str,
    dataset: str,
    config_files: Sequence[str | os.PathLike] = (),
    overrides: Mapping[str, Any] | None = None,
    base: bool = False,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
) -> tuple[SweepSpec, dict[str, Dimension]]:
    """Validate the space and the config on the driver and build the data once.

    Building the dataset here writes bundled data and the LLM table cache before any trial
    starts, so concurrent trials only read them.
    """
    space_file = Path(space_file).resolve()
    space = load_search_space(space_file)
    files = [str(Path(f).resolve()) for f in config_files]
    overrides = dict(overrides or {})
    constants = {k: d.value for k, d in space.items() if not d.searched}
    with hidden_command_line():
        config = build_config(model, dataset, files, {**overrides, **constants}, base=base)
    data_path = str(Path(config["data_path"]).resolve().parent)
    overrides.update(absolute_paths(config))
    load_dataset(config)
    metric = config["valid_metric"].lower()
    evaluations = max(1, math.ceil(config["epochs"] / max(1, config["eval_step"])))
    spec = SweepSpec(
        model=model,
        dataset=dataset,
        base=base,
        space_file=str(space_file),
        config_files=files,
        overrides=overrides,
        data_path=data_path,
        seed=int(config["seed"]),
        metric=metric,
        mode="max" if config["valid_metric_bigger"] else "min",
        max_t=evaluations,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
    )
    return spec, space


def _runtime_env() -> dict[str, Any]:
    """Environment of every Ray worker: the plugin importable and the compat variables set."""
    paths = (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH"))
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in paths if p), **worker_env()}}


def _trainable(spec: SweepSpec):
    resources = {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial}
    return tune.with_resources(tune.with_parameters(faerec_trial, spec=spec), resources)


def _scheduler(kind: str, spec: SweepSpec, grace_period: int):
    if kind == "fifo":
        return FIFOScheduler()
    if kind == "asha":
        grace = max(1, min(grace_period, spec.max_t))
        return ASHAScheduler(time_attr="training_iteration", max_t=spec.max_t, grace_period=grace)
    raise ValueError(f"scheduler: unknown '{kind}'; choose one of {', '.join(SCHEDULERS)}")


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Join the cluster at ``address`` (or start a local Ray) for the block; disconnect after.

    An already connected Ray (e.g. a caller's own ``ray.init``) is used as is and left running.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    options: dict[str, Any] = {"runtime_env": _runtime_env(), "include_dashboard": False}
    if address:
        options["address"] = address
    else:
        options["num_cpus"] = num_cpus
    ray.init(**options)
    try:
        yield
    finally:
        ray.shutdown()


def default_name(model: str, dataset: str, space_file: str | os.PathLike, base: bool) -> str:
    """Experiment name of a sweep: ``<FAERec|base>-<model>-<dataset>-<space>``."""
    return f"{'base' if base else 'FAERec'}-{model}-{dataset}-{Path(space_file).stem}"


def run_sweep(
    space_file: str | os.PathLike,
    model: str = "SASRec",
    dataset: str = "amazon-beauty",
    *,
    config_files: Sequence[str | os.PathLike] = (),
    overrides: Mapping[str, Any] | None = None,
    base: bool = False,
    num_samples: int = 1,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    max_concurrent: int | None = None,
    scheduler: str = "asha",
    grace_period: int = 1,
    ray_address: str | None = None,
    num_cpus: int | None = None,
    storage_path: str | os.PathLike = "ray_results",
    name: str | None = None,
    resume: bool = False,
    test_best: bool = True,
) -> dict[str, Any]:
    """Run (or, with ``resume``, continue) a sweep; write and return its summary.

    Returns ``experiment_dir``, ``best_params``, ``best_valid_score``, ``test_result`` (or None)
    and the paths of the written files (``trials_csv``, ``trials_md``, ``best_config``,
    ``plot``).
    """
    storage = Path(storage_path).resolve()
    name = name or default_name(model, dataset, space_file, base)
    exp_dir = storage / name
    restorable = tune.Tuner.can_restore(exp_dir)
    if resume and not (restorable and (exp_dir / SPEC_FILE).is_file()):
        raise FileNotFoundError(
            f"--resume: no sweep to resume in {exp_dir}; fix: give the --name and --storage-path "
            "of the interrupted sweep, or leave out --resume to start a new one."
        )
    if not resume and restorable:
        raise FileExistsError(
            f"--name: {exp_dir} holds a sweep already; fix: pass --resume to continue it or "
            "another --name for a new one."
        )
    if resume:
        spec = SweepSpec.load(exp_dir)
        space = load_search_space(spec.space_file)
    else:
        spec, space = prepare_sweep(
            space_file,
            model,
            dataset,
            config_files,
            overrides,
            base,
            cpus_per_trial,
            gpus_per_trial,
        )
    with ray_session(ray_address, num_cpus):
        if resume:
            tuner = tune.Tuner.restore(str(exp_dir), _trainable(spec), resume_errored=False)
        else:
            tuner = tune.Tuner(
                _trainable(spec),
                param_space=ray_param_space(space),
                tune_config=tune.TuneConfig(
                    metric=spec.metric,
                    mode=spec.mode,
                    scheduler=_scheduler(scheduler, spec, grace_period),
                    num_samples=num_samples,
                    max_concurrent_trials=max_concurrent,
                    reuse_actors=False,
                ),
                run_config=air.RunConfig(
                    name=name,
                    storage_path=str(storage),
                    checkpoint_config=air.CheckpointConfig(num_to_keep=1),
                    failure_config=air.FailureConfig(max_failures=0),
                    verbose=1,
                ),
            )
        exp_dir.mkdir(parents=True, exist_ok=True)
        spec.save(exp_dir)
        results = tuner.fit()
    return summarize(results, spec, space, exp_dir, test_best=test_best)


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


def trials_table(results, spec: SweepSpec, space: Mapping[str, Dimension]) -> pd.DataFrame:
    """One row per trial: parameters, best validation metric, epochs run, status, error.

    Status is ``completed`` (trained to the end or to RecBole's early stop), ``stopped``
    (stopped early by the scheduler) or ``failed`` (raised; the error column says why).
    """
    searched = [key for key, dim in space.items() if dim.searched]
    best = f"best_{spec.metric}"
    rows = []
    for result in results:
        metrics = result.metrics or {}
        if result.error is not None:
            status = "failed"
        else:
            status = "completed" if metrics.get("finished") else "stopped"
        rows.append(
            {
                "trial": metrics.get("trial_id") or Path(result.path).name,
                **{key: _plain(_trial_params(result).get(key)) for key in searched},
                best: metrics.get(best, np.nan) if status != "failed" else np.nan,
                "epochs": int(metrics.get("epoch", 0) or 0),
                "status": status,
                "error": _error_line(result.error),
            }
        )
    table = pd.DataFrame(rows)
    return table.sort_values(best, ascending=spec.mode == "min", na_position="last", kind="stable")


def trials_markdown(table: pd.DataFrame) -> str:
    """The trial table as Markdown; trial ids stay text even when they look like numbers."""
    text_columns = [table.columns.get_loc(name) for name in ("trial", "error")]
    return table.to_markdown(index=False, disable_numparse=text_columns)


def write_best_config(path: Path, spec: SweepSpec, params: Mapping[str, Any], score: float) -> Path:
    """The best trial's settings as a RecBole yaml (``--config_files`` accepts it)."""
    settings = {**spec.overrides, **{key: _plain(value) for key, value in params.items()}}
    files = " ".join([*spec.config_files, str(path)])
    header = (
        f"# Best trial of the sweep over {spec.space_file}\n"
        f"# ({'bare ' if spec.base else 'FAERec + '}{spec.model} on {spec.dataset}; "
        f"best validation {spec.metric} = {score:.6g}).\n"
        f"# Rerun: python run_recbole_faerec.py --model={spec.model} --dataset={spec.dataset}"
        f"{' --base' if spec.base else ''} --config_files='{files}'\n"
    )
    path.write_text(header + yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path


def _numeric(values: pd.Series) -> bool:
    return bool(values.map(lambda v: isinstance(v, int | float) and not isinstance(v, bool)).all())


def plot_sensitivity(
    table: pd.DataFrame, keys: Sequence[str], metric: str, path: Path, title: str = ""
) -> Path:
    """Validation metric over the searched parameters, like the paper's Figure 3.

    x is ``lambda`` (else the first searched key), one line per value of ``alpha`` (else the
    second key); a log x axis when positive values span 20x or more; trials averaged per point.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = table[table["status"] != "failed"].dropna(subset=[metric])
    keys = list(keys)
    preferred = [k for k in ("lambda", "alpha") if k in keys]
    ordered = preferred + [k for k in keys if k not in preferred]
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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
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
    key = f"best_{spec.metric}"
    scored = [r for r in results if r.error is None and key in (r.metrics or {})]
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
    title = f"{'bare ' if spec.base else 'FAERec + '}{spec.model} on {spec.dataset}"
    plot_sensitivity(table, searched, metric, outputs["plot"], title=title)
    best = _best_result(results, spec)
    if best is None:
        return outputs
    config = _trial_params(best)
    params = {key: _plain(config[key]) for key in space if key in config}
    score = float(best.metrics[metric])
    outputs.update(best_params=params, best_valid_score=score)
    outputs["best_config"] = write_best_config(exp_dir / "best_config.yaml", spec, params, score)
    if test_best and best.checkpoint is not None:
        with best.checkpoint.as_directory() as folder:
            model_file = next(Path(folder).glob("*.pth"), None)
            if model_file is None:
                raise FileNotFoundError(
                    f"tune: the best trial's checkpoint {folder} holds no .pth model file; fix: "
                    "rerun the sweep (or its best trial) with `saved: True` so that RecBole "
                    "writes the model file."
                )
            test_result = evaluate_checkpoint(model_file, exp_dir)
        outputs["test_result"] = test_result
        summary = {"params": params, f"valid_{metric}": score, "test_result": test_result}
        atomic_write_text(exp_dir / "test_result.json", json_text(summary))
    return outputs


def cli_sweep(args: Any, extra: Sequence[str]) -> int:
    """``run_recbole_faerec.py --tune SPACE``: run the sweep the parsed flags describe."""
    try:
        overrides = parse_overrides(extra)
        outcome = run_sweep(
            args.tune,
            args.model,
            args.dataset,
            config_files=split_config_files(args.config_files),
            overrides=overrides,
            base=args.base,
            num_samples=args.num_samples,
            cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial,
            max_concurrent=args.max_concurrent,
            scheduler=args.scheduler,
            grace_period=args.grace_period,
            ray_address=args.ray_address,
            num_cpus=args.num_cpus,
            storage_path=args.storage_path,
            name=args.name,
            resume=bool(args.resume),
        )
    except (ValueError, OSError) as exc:
        if args.debug:
            raise
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(format_outcome(outcome))
    return 0 if outcome["best_params"] is not None else 1


def format_outcome(outcome: Mapping[str, Any]) -> str:
    """Human-readable summary of :func:`run_sweep`'s result."""
    lines = [trials_markdown(outcome["table"]), ""]
    if outcome["best_params"] is None:
        lines.append("No trial finished: see the error column and the trial logs.")
    else:
        lines.append(f"Best parameters: {outcome['best_params']}")
        lines.append(f"Best validation score: {outcome['best_valid_score']:.6g}")
    if outcome["test_result"]:
        shown = {k: v for k, v in outcome["test_result"].items() if "[" not in k}
        lines.append(f"Test result of the best trial: {shown}")
    lines.append(f"Experiment folder: {outcome['experiment_dir']}")
    for key in ("trials_csv", "trials_md", "best_config", "plot"):
        if outcome[key] is not None:
            lines.append(f"  {key}: {outcome[key]}")
    return "\n".join(lines)
