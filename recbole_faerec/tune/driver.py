"""The sweep driver: a Ray session, the Tuner (new or restored) and the scheduler.

Every Ray call of the plugin lives in this package (here and in :mod:`.trainable`): a newer Ray
only needs :func:`recbole_faerec.tune.trainable._report` (and the few imports) adjusted. Tested
with ray 2.6.3, RecBole's cap.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ray import air, tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from recbole_faerec.compat import worker_env
from recbole_faerec.model.registry import DEFAULT_METHOD, METHODS
from recbole_faerec.tune.space import Dimension, load_search_space
from recbole_faerec.tune.spec import SPEC_FILE, SweepSpec, prepare_sweep
from recbole_faerec.tune.summary import summarize
from recbole_faerec.tune.trainable import faerec_trial

SCHEDULERS = ("asha", "fifo")

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


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


def default_name(model: str, dataset: str, space_file: str | os.PathLike, method: str) -> str:
    """Experiment name of a sweep: ``<FAERec|LLMESR|LLMInit|base>-<model>-<dataset>-<space>``."""
    prefix = "base" if method == "bare" else METHODS[method]
    return f"{prefix}-{model}-{dataset}-{Path(space_file).stem}"


def run_sweep(
    space_file: str | os.PathLike,
    model: str = "SASRec",
    dataset: str = "amazon-beauty",
    *,
    config_files: Sequence[str | os.PathLike] = (),
    overrides: Mapping[str, Any] | None = None,
    method: str = DEFAULT_METHOD,
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
    name = name or default_name(model, dataset, space_file, method)
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
            method,
            cpus_per_trial,
            gpus_per_trial,
        )
    with ray_session(ray_address, num_cpus):
        if resume:
            # A failed trial starts again: it may have died with its worker, not of its settings.
            tuner = tune.Tuner.restore(str(exp_dir), _trainable(spec), restart_errored=True)
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
