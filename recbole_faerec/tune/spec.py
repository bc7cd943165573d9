"""What every trial of a sweep shares, built and validated once on the driver.

:class:`SweepSpec` is saved in the experiment folder (``sweep.json``), so a resumed sweep runs
its trials exactly as the interrupted one did.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recbole_faerec.config import build_config
from recbole_faerec.model.registry import DEFAULT_METHOD
from recbole_faerec.pipeline import load_dataset
from recbole_faerec.process import hidden_command_line
from recbole_faerec.tune.space import Dimension, load_search_space

SPEC_FILE = "sweep.json"

# Config keys holding paths: made absolute on the driver, as trials run in their own folders.
PATH_KEYS = ("llm_embedding_file", "embedding_cache_dir", "embedding_model", "prompt_template")


@dataclasses.dataclass
class SweepSpec:
    """Everything a trial needs besides its sampled parameters (JSON-serialisable)."""

    model: str
    dataset: str
    method: str
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


def plain(value: Any) -> Any:
    """numpy scalars (Ray's samples) as Python values, for yaml and JSON."""
    return value.item() if isinstance(value, np.generic) else value


def trial_config_dict(spec: SweepSpec, params: Mapping[str, Any], trial_dir: str) -> dict:
    """RecBole ``config_dict`` of one trial: overrides, sampled parameters, absolute paths."""
    return {
        **spec.overrides,
        **{key: plain(value) for key, value in params.items()},
        "seed": plain(params.get("seed", spec.seed)),
        "data_path": spec.data_path,
        "checkpoint_dir": str(Path(trial_dir) / "saved"),
    }


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
    method: str = DEFAULT_METHOD,
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
        config = build_config(model, dataset, files, {**overrides, **constants}, method=method)
    data_path = str(Path(config["data_path"]).resolve().parent)
    overrides.update(absolute_paths(config))
    load_dataset(config)
    metric = config["valid_metric"].lower()
    evaluations = max(1, math.ceil(config["epochs"] / max(1, config["eval_step"])))
    spec = SweepSpec(
        model=model,
        dataset=dataset,
        method=method,
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
