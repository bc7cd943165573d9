"""Checks of the settings a user gives that RecBole's ``Config`` leaves unchecked.

:func:`~recbole_faerec.config.build_config` runs them, so the command line, the report, the sweep
and the Python API all get them, before any data is loaded:

* :func:`check_command_line`: a ``--key=value`` flag given twice with different values (RecBole
  raises a SyntaxError for it).
* :func:`recbole_config_error`: what RecBole's ``Config`` raises for a bad setting, as a
  :class:`~recbole_faerec.io.ConfigError`.
* :func:`check_numbers`: every key whose default in the loaded yaml files (RecBole's and the
  plugin's) is a number must be a number; RecBole keeps a value it cannot parse as text.
* :func:`check_sizes`: sequence lengths, layer and batch sizes and epochs are ints >= 1
  (:func:`check_size` also checks ``nproc``, in :func:`recbole_faerec.quick_start.run`).
* :func:`check_head_ratio` and :func:`check_data_path`: a head share in (0, 1), a data folder
  that is not a file.
* :func:`check_faerec_settings`: FAERec's hyperparameters are in their valid ranges (the model's
  constructor runs it too).
* :func:`check_llmesr_settings`: LLM-ESR's keys (``properties/model/LLMESR.yaml``).
* :func:`check_text_prior_settings`: the ``text_prior*`` keys, when the prior is on (the
  weights must hold 0, the model alone).

Each error names the key and the fix: ``<key>: <problem>; fix: <how>``.
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from recbole_faerec.io import ConfigError, FAERecError, check_repeated_flag
from recbole_faerec.model.fusion import FUSION_MODES, SCORE_TABLES, TARGET_TABLES
from recbole_faerec.model.precision import step_dtype

#: Sizes, lengths and counts that must be ints >= 1 wherever the run has them.
SIZE_KEYS = (
    "MAX_ITEM_LIST_LENGTH",
    "hidden_size",
    "embedding_size",
    "inner_size",
    "n_layers",
    "num_layers",
    "n_heads",
    "train_batch_size",
    "eval_batch_size",
    "epochs",
    "embedding_max_length",
    "embedding_batch_size",
    "embedding_api_max_attempts",
)

#: What RecBole's ``Config`` raises, besides ValueError, for settings it refuses: a repeated flag
#: (SyntaxError), an unknown metric (NotImplementedError), ranking and value metrics together
#: (RuntimeError), a ``topk`` that is not a number or list (TypeError), fewer GPUs than processes
#: (AssertionError), a missing model or dataset (KeyError).
RECBOLE_CONFIG_ERRORS = (
    SyntaxError,
    NotImplementedError,
    RuntimeError,
    TypeError,
    AttributeError,
    AssertionError,
    KeyError,
)


def is_number(value: Any) -> bool:
    """An int or a float (numpy's too, as a sweep samples them); a bool is not a number here."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    """An int (numpy's too); a bool is not an int here."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_command_line(argv: Sequence[str] | None = None) -> None:
    """The ``--key=value`` flags that RecBole's ``Config`` reads from ``argv`` (``sys.argv``) may
    repeat a key only with the same value; ConfigError naming the key otherwise."""
    argv = sys.argv if argv is None else argv
    if not argv or "ipykernel_launcher" in argv[0]:  # RecBole skips a notebook's command line
        return
    seen: dict[str, str] = {}
    for arg in argv[1:]:
        parts = arg[2:].split("=")
        if not arg.startswith("--") or len(parts) != 2:  # as RecBole's ``_load_cmd_line``
            continue
        key, value = parts
        check_repeated_flag(key, seen.get(key), value)
        seen[key] = value


def recbole_config_error(exc: BaseException) -> ConfigError | None:
    """``exc``, raised while RecBole's ``Config`` read the settings, as a ConfigError; None for
    errors to raise as they are: the plugin's own and ``torch.distributed``'s (a process group
    that cannot start)."""
    import torch.distributed

    if isinstance(exc, FAERecError | torch.distributed.DistError):
        return None
    text = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
    return ConfigError(
        f"RecBole refused the settings: {text.rstrip('.')}; fix: correct the setting it names "
        "(--debug shows where RecBole raised it)."
    )


def default_values(config, default_files: Iterable[str]) -> dict[str, Any]:
    """The defaults of a run: RecBole's own yaml files, then the plugin's ``default_files``."""
    import yaml

    defaults = dict(getattr(config, "internal_config_dict", {}))
    for path in default_files:
        with open(path, encoding="utf-8") as handle:
            defaults.update(yaml.load(handle.read(), Loader=config.yaml_loader) or {})
    return defaults


def _example(key: str, default: Any) -> str:
    return f"--{key}={default} on the command line or `{key}: {default}` in a yaml file"


def check_numbers(config, defaults: Mapping[str, Any]) -> None:
    """Every key whose default is a number holds a number (or null); RecBole keeps text it cannot
    parse (``--hidden_size=abc``) as a string, which fails far later. ConfigError otherwise."""
    for key, default in defaults.items():
        value = config[key]
        if is_number(default) and value is not None and not is_number(value):
            raise ConfigError(
                f"{key}: {value!r} is not a number; fix: give a number, e.g. "
                f"{_example(key, default)}."
            )


def check_size(key: str, value: Any, example: Any = 1, setting: bool = True) -> None:
    """``value`` of ``key`` is an int >= 1; ConfigError naming the key otherwise. ``setting``:
    a config key (the fix shows the flag and the yaml line), else a command-line flag only."""
    if not (is_int(value) and value >= 1):
        how = _example(key, example) if setting else f"--{key}={example}"
        raise ConfigError(f"{key}: {value!r} is invalid; fix: give an int >= 1, e.g. {how}.")


def check_sizes(config, defaults: Mapping[str, Any]) -> None:
    """The :data:`SIZE_KEYS` a run has (a number by default, or set by the user where the
    default is null) are ints >= 1."""
    for key in SIZE_KEYS:
        default, value = defaults.get(key), config[key]
        if is_number(default) or (default is None and value is not None):
            check_size(key, value, default if is_number(default) and default >= 1 else 1)


def check_settings(config, default_files: Iterable[str]) -> None:
    """:func:`check_numbers`, :func:`check_sizes`, :func:`check_head_ratio` and
    :func:`check_data_path` of a built ``config``."""
    defaults = default_values(config, default_files)
    check_numbers(config, defaults)
    check_sizes(config, defaults)
    check_head_ratio(config)
    check_data_path(config)


def check_head_ratio(config) -> None:
    """``head_ratio``, the head's share of the items, lies strictly between 0 and 1 (at 0 or 1
    one of head and tail is empty)."""
    value = config["head_ratio"] if "head_ratio" in config else None
    if value is None:
        return
    _check(
        is_number(value) and 0 < value < 1,
        "head_ratio",
        value,
        "a share of the items in (0, 1), e.g. 0.2",
        "properties/metrics.yaml",
    )


def check_data_path(config) -> None:
    """``data_path`` is a folder (RecBole reads ``<data_path>/<dataset>/<dataset>.inter``); a
    path that is a file is refused before any data loads (a missing folder is fine: a bundled
    dataset is written into it)."""
    folder = Path(config["data_path"]).parent  # RecBole has joined the dataset's name to it
    for path in (folder, *folder.parents):
        if path.exists():
            if not path.is_dir():
                where = "is a file" if path == folder else f"lies in the file {str(path)!r}"
                raise ConfigError(
                    f"data_path: {str(folder)!r} {where}, not a folder; fix: "
                    "give the folder that holds <dataset>/<dataset>.inter, e.g. "
                    "--data_path=dataset/ (the default)."
                )
            return


def _check(ok: bool, key: str, value: Any, valid: str, yaml_file: str) -> None:
    """ConfigError naming ``key``, its valid range and where its default lives, unless ``ok``."""
    if not ok:
        raise ConfigError(
            f"{key}: {value!r} is invalid; expected {valid}; fix: --{key}=... on the command "
            f"line or in a yaml file ({yaml_file} has the defaults)."
        )


def check_faerec_settings(config) -> None:
    """FAERec's hyperparameters (``properties/model/FAERec.yaml``) are in their valid ranges."""

    def check(key: str, ok: bool, valid: str) -> None:
        _check(ok, key, config[key], valid, "properties/model/FAERec.yaml")

    def at_least(key: str, low: float, strict: bool = False, nullable: bool = False) -> None:
        value = config[key]
        ok = (nullable and value is None) or (
            value is not None and (value > low if strict else value >= low)
        )
        valid = f"{'null or ' if nullable else ''}a number {'>' if strict else '>='} {low}"
        check(key, ok, valid)

    at_least("alpha", 0)
    at_least("tau", 0, strict=True)
    at_least("lambda", 0)
    for key in ("w_min", "w_max"):
        check(key, config[key] is not None and 0 <= config[key] <= 1, "a number in [0, 1]")
    check(
        "w_min", config["w_min"] <= config["w_max"], f"w_min <= w_max (w_max is {config['w_max']})"
    )
    check("period", config["period"] is not None and config["period"] > 0, "a number of epochs > 0")
    check("fusion", config["fusion"] in FUSION_MODES, f"one of {FUSION_MODES}")
    check("target_table", config["target_table"] in TARGET_TABLES, f"one of {TARGET_TABLES}")
    check("score_table", config["score_table"] in SCORE_TABLES, f"one of {SCORE_TABLES}")
    at_least("align_max_items", 2, nullable=True)
    at_least("align_max_negatives", 1, nullable=True)
    dropout = config["projection_dropout"]
    check("projection_dropout", dropout is not None and 0 <= dropout < 1, "a number in [0, 1)")
    step_dtype(config["step_precision"], config["device"])  # raises, naming the key, when invalid
    at_least("llm_input_dim", 1, nullable=True)


#: The losses LLM-ESR's self-distillation can use (``llmesr_distill_loss``).
DISTILL_LOSSES = ("mse", "contrastive")
TEACHER_REFRESHES = ("step", "epoch")


def check_llmesr_settings(config) -> None:
    """LLM-ESR's keys (``properties/model/LLMESR.yaml``) are in their valid ranges."""
    checks = {
        "llmesr_distill_weight": (
            is_number(config["llmesr_distill_weight"]) and config["llmesr_distill_weight"] >= 0,
            "a number >= 0",
        ),
        "llmesr_distill_loss": (
            config["llmesr_distill_loss"] in DISTILL_LOSSES,
            f"one of {', '.join(DISTILL_LOSSES)}",
        ),
        "llmesr_similar_users": (
            is_int(config["llmesr_similar_users"]) and config["llmesr_similar_users"] >= 1,
            "an int >= 1",
        ),
        "llmesr_item_reg_weight": (
            is_number(config["llmesr_item_reg_weight"]) and config["llmesr_item_reg_weight"] >= 0,
            "a number >= 0",
        ),
        "llmesr_teacher_refresh": (
            config["llmesr_teacher_refresh"] in TEACHER_REFRESHES,
            f"one of {', '.join(TEACHER_REFRESHES)}",
        ),
        "llmesr_cross_attention": (
            isinstance(config["llmesr_cross_attention"], bool),
            "True or False",
        ),
        "user_embedding_max_length": (
            is_int(config["user_embedding_max_length"])
            and config["user_embedding_max_length"] >= 1,
            "an int >= 1",
        ),
        "loss_type": (config["loss_type"] in ("CE", "BCE"), "CE or BCE for LLM-ESR"),
    }
    for key, (ok, valid) in checks.items():
        _check(ok, key, config[key], valid, "properties/model/LLMESR.yaml")


def check_text_prior_settings(config) -> None:
    """The ``text_prior*`` keys (``properties/text_prior.yaml``), when the prior is on."""
    if not config["text_prior"]:
        return
    weights = config["text_prior_weights"]
    checks = {
        "text_prior_weights": (
            isinstance(weights, list | tuple)
            and all(is_number(w) and w >= 0 for w in weights)
            and 0 in weights,
            "a list of numbers >= 0 that holds 0 (the model alone, so validation can always "
            "fall back to it), e.g. [0, 4, 8]",
        ),
        "text_prior_dim": (
            is_int(config["text_prior_dim"]) and config["text_prior_dim"] >= 1,
            "an int >= 1",
        ),
        "text_prior_shrinkage": (
            is_number(config["text_prior_shrinkage"]) and config["text_prior_shrinkage"] > 0,
            "a number > 0",
        ),
        "text_prior_transition_epochs": (
            is_int(config["text_prior_transition_epochs"])
            and config["text_prior_transition_epochs"] >= 0,
            "an int >= 0",
        ),
        "text_prior_transition_popularity": (
            is_number(config["text_prior_transition_popularity"]),
            "a number",
        ),
    }
    for key, (ok, valid) in checks.items():
        _check(ok, key, config[key], valid, "properties/text_prior.yaml")
