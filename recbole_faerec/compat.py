"""Every version shim the plugin needs, in one place, one comment each.

RecBole 1.2.1 predates torch 2.6, numpy 2 and pandas 3; the pins in ``setup.cfg`` keep numpy and
pandas on versions RecBole runs with. What cannot be pinned away is adjusted here, at import time
of :mod:`recbole_faerec`, so the rest of the code can call RecBole as documented.
"""

from __future__ import annotations

import os

from recbole.config import Config

_APPLIED = False


def apply() -> None:
    """Apply all shims once per process (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    # torch >= 2.6 loads checkpoints with ``weights_only=True`` by default, but RecBole's Trainer
    # (``resume_checkpoint`` and ``evaluate(load_best_model=True)``) stores its Config object in
    # the checkpoint and calls ``torch.load`` without ``weights_only``. The variable only affects
    # call sites that leave ``weights_only`` unset, and, being in the environment, it also reaches
    # Ray workers and subprocesses started after this import.
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    # RecBole 1.2.1's ``sequential_recommender/sine.py`` calls
    # ``torch.autograd.set_detect_anomaly(True)`` at import time, and importing any RecBole
    # sequential model imports it: every backward pass of every run then checks each gradient
    # for NaN (a debugging aid; about a quarter of a FAERec training step on CPU). The package is
    # imported here once and the switch turned back off; numerics are unchanged.
    import recbole.model.sequential_recommender  # noqa: F401
    import torch

    torch.autograd.set_detect_anomaly(False)
    # RecBole's metrics and data code use numpy aliases removed in numpy 1.24 (``np.float``...)
    # and put them back in ``Config.__init__`` (``compatibility_settings``). A process that only
    # unpickles a saved Config (``load_data_and_model``, a resumed sweep testing its best trial)
    # never runs that constructor, so the same aliases are set here.
    Config.compatibility_settings(Config.__new__(Config))
    # RecBole's trainer wraps the model in ``DistributedDataParallel(model, device_ids=[rank])``;
    # torch refuses ``device_ids`` for a module on the CPU, which a gloo process group trains
    # (``dist_backend``, :class:`SequentialConfig`). The name RecBole's trainer module calls is
    # pointed at a wrapper that leaves ``device_ids`` out for CPU modules.
    import recbole.trainer.trainer as recbole_trainer

    recbole_trainer.DistributedDataParallel = _distributed_data_parallel
    # RecBole's dataset code fills missing values with ``df[field].fillna(..., inplace=True)``,
    # which pandas 2.2 answers with a FutureWarning about chained assignment on every dataset
    # load (the fill still works on pandas 2). Exactly those are silenced: raised from RecBole's
    # dataset module, of that category, with that message; every other warning still shows.
    silence_recbole_dataset_warnings()
    _APPLIED = True


#: The message of pandas' FutureWarning that RecBole's ``fillna(inplace=True)`` calls raise.
CHAINED_ASSIGNMENT_WARNING = (
    r"A value is trying to be set on a copy of a DataFrame or Series through chained assignment "
    r"using an inplace method"
)
#: The module of RecBole that raises it.
RECBOLE_DATASET_MODULE = r"recbole\.data\.dataset\.dataset$"


def silence_recbole_dataset_warnings() -> None:
    """Ignore pandas' chained-assignment FutureWarning raised inside RecBole's dataset module
    (:data:`CHAINED_ASSIGNMENT_WARNING`), and nothing else; calling it again changes nothing."""
    import warnings

    warnings.filterwarnings(
        "ignore",
        message=CHAINED_ASSIGNMENT_WARNING,
        category=FutureWarning,
        module=RECBOLE_DATASET_MODULE,
    )


def _distributed_data_parallel(module, device_ids=None, **kwargs):
    """``DistributedDataParallel`` that accepts RecBole's ``device_ids`` for CPU modules too."""
    from torch.nn.parallel import DistributedDataParallel

    if next(module.parameters()).device.type == "cpu":
        device_ids = None
    return DistributedDataParallel(module, device_ids=device_ids, **kwargs)


DIST_BACKENDS = ("auto", "nccl", "gloo")


def resolve_dist_backend(name: str | None) -> str:
    """``dist_backend``: ``auto`` is NCCL when CUDA is available, else gloo."""
    import torch

    backend = str(name or "auto").lower()
    if backend not in DIST_BACKENDS:
        raise ValueError(
            f"dist_backend: {name!r} is invalid; fix: choose one of {', '.join(DIST_BACKENDS)}."
        )
    if backend == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError(
            "dist_backend: nccl needs CUDA GPUs and none is visible; fix: dist_backend: gloo "
            "(or auto) to run the processes on the CPU."
        )
    return backend


def worker_env() -> dict[str, str]:
    """Environment variables set by :func:`apply`, for processes started before the plugin is
    imported in them: Ray workers of an existing cluster get these through ``runtime_env``."""
    apply()
    return {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"]}


class SequentialConfig(Config):
    """RecBole's ``Config`` that accepts ``repeatable: False`` for sequential models and starts
    gloo process groups (CPU processes) as well as NCCL ones.

    RecBole 1.2.1 raises in ``_set_default_parameters`` when a sequential model asks for
    ``repeatable: False``, because its full-sort loader has no history for sequential rows; the
    plugin's loader (:mod:`recbole_faerec.data.history`) has. The check is passed with
    ``repeatable`` set to True for the duration of the call, and the user's value is restored.
    """

    def _init_device(self) -> None:
        """RecBole 1.2.1 starts every process group with NCCL on a GPU. With ``dist_backend``
        resolving to gloo, the process group is gloo and every process trains on the CPU; NCCL
        keeps RecBole's own set-up."""
        import torch

        config = self.final_config_dict
        distributed = "local_rank" in config
        if not distributed or resolve_dist_backend(config.get("dist_backend")) == "nccl":
            super()._init_device()
            return
        config["gpu_id"] = str(config["gpu_id"])
        torch.distributed.init_process_group(
            backend="gloo",
            rank=config["local_rank"] + config["offset"],
            world_size=config["world_size"],
            init_method=f"tcp://{config['ip']}:{config['port']}",
        )
        config["device"] = torch.device("cpu")
        config["single_spec"] = False
        if config["local_rank"] != 0:
            config.update(state="error", show_progress=False, verbose=False)

    def _set_default_parameters(self) -> None:
        repeatable = self.final_config_dict.get("repeatable", True)
        self.final_config_dict["repeatable"] = True
        try:
            super()._set_default_parameters()
        finally:
            self.final_config_dict["repeatable"] = repeatable
