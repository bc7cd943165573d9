"""Ray Tune sweeps of FAERec (or a bare backbone) over a yaml search space.

A sweep runs on a local Ray instance (started and stopped here) or joins a running cluster
(``ray_address``). Each trial trains through the plugin's RecBole pipeline and reports the
validation metric and the loss parts after every evaluation, so ASHA can stop weak trials early;
a trial that trains to its end fits its text prior, and its objective is the validation score with
it, as the main command scores (:mod:`.trainable`). Only the best trial is tested, once, with its
best checkpoint and its prior. Results land in the experiment
folder ``<storage_path>/<name>``: ``trials.csv``/``trials.md`` (all trials), ``best_config.yaml``
(a RecBole yaml for ``--config_files``), ``sensitivity.png`` and ``test_result.json``.

Modules: :mod:`.space` (the search-space language, no Ray), :mod:`.spec` (what trials share),
:mod:`.trainable` (one trial), :mod:`.driver` (Ray session and Tuner), :mod:`.summary` (results
files) and :mod:`.cli`. The names below are importable from the package itself; all but the
search-space ones are loaded on first use, so ``import recbole_faerec.tune`` needs no Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

from recbole_faerec.tune.space import (
    DISTRIBUTIONS,
    RESERVED_KEYS,
    Dimension,
    SearchSpaceError,
    load_search_space,
    parse_search_space,
)

_LAZY = {
    "SPEC_FILE": "spec",
    "SweepSpec": "spec",
    "absolute_paths": "spec",
    "prepare_sweep": "spec",
    "trial_config_dict": "spec",
    "faerec_trial": "trainable",
    "loss_metrics": "trainable",
    "PACKAGE_ROOT": "driver",
    "SCHEDULERS": "driver",
    "default_name": "driver",
    "ray_param_space": "driver",
    "ray_session": "driver",
    "run_sweep": "driver",
    "evaluate_checkpoint": "summary",
    "summarize": "summary",
    "trials_markdown": "summary",
    "trials_table": "summary",
    "write_best_config": "summary",
    "cli_sweep": "cli",
    "format_outcome": "cli",
}

__all__ = [
    "DISTRIBUTIONS",
    "RESERVED_KEYS",
    "Dimension",
    "SearchSpaceError",
    "load_search_space",
    "parse_search_space",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    """The package's names from the modules that need Ray, imported when first asked for."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
