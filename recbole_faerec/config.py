"""Configuration layering for FAERec runs on top of RecBole's :class:`~recbole.config.Config`.

Files are merged in this order, later ones winning (RecBole then applies its own precedence,
``command line > config_dict > config files > RecBole defaults``)::

    backbone < metrics.yaml < embedding.yaml < protocol.yaml < text_prior.yaml < method yaml
             < dataset yaml < user files

The backbone yaml is the plugin's own (``properties/model/<name>.yaml``) for the models it adds,
else RecBole's. The method yaml holds the keys of the method the run wraps around the backbone
(``properties/model/FAERec.yaml``, ``LLMESR.yaml``; :data:`~.model.registry.METHODS`): every
method uses the very same files but that one, so runs differ only in the method itself.

:func:`build_config` checks the settings before any data is loaded (:mod:`.config_checks` for
what RecBole leaves unchecked) and raises :class:`~recbole_faerec.io.ConfigError`, naming the key
and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import recbole
from recbole.utils import InputType

from recbole_faerec.compat import SequentialConfig
from recbole_faerec.config_checks import (
    RECBOLE_CONFIG_ERRORS,
    check_command_line,
    check_faerec_settings,
    check_llmesr_settings,
    check_settings,
    check_text_prior_settings,
    recbole_config_error,
)
from recbole_faerec.io import ConfigError
from recbole_faerec.metrics import register_metrics
from recbole_faerec.model.registry import METHODS, get_model, get_sequential_model, resolve_method
from recbole_faerec.supported_backbones import check_backbone

PROPERTIES_DIR = Path(__file__).resolve().parent / "properties"
RECBOLE_PROPERTIES_DIR = Path(recbole.__file__).resolve().parent / "properties"


def backbone_config_file(backbone: str) -> Path | None:
    """The default yaml of ``backbone``: the plugin's for its own models, else RecBole's."""
    for folder in (PROPERTIES_DIR / "model", RECBOLE_PROPERTIES_DIR / "model"):
        path = folder / f"{backbone}.yaml"
        if path.is_file():
            return path
    return None


def default_config_files(backbone: str, dataset: str, method: str = "faerec") -> list[str]:
    """The plugin's default yaml files for ``method`` around ``backbone`` on ``dataset``, in
    merge order."""
    candidates = [
        backbone_config_file(backbone),
        PROPERTIES_DIR / "metrics.yaml",
        PROPERTIES_DIR / "embedding.yaml",
        PROPERTIES_DIR / "protocol.yaml",
        PROPERTIES_DIR / "text_prior.yaml",
        PROPERTIES_DIR / "model" / f"{METHODS[method]}.yaml",
        PROPERTIES_DIR / "dataset" / f"{dataset}.yaml",
    ]
    return [str(path) for path in candidates if path is not None and path.is_file()]


def split_config_files(text: str | None) -> list[str]:
    """The yaml files of a ``--config_files`` value: separated by any run of whitespace."""
    return text.split() if text else []


def check_config_file(path: str | os.PathLike) -> None:
    """A user's yaml file must exist and parse to a mapping of keys."""
    import yaml

    if not Path(path).is_file():
        raise FileNotFoundError(
            f"config_files: {str(path)!r} does not exist; fix: give the path of a yaml file "
            "(several files separated by spaces)."
        )
    try:
        content = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(
            f"config_files: {str(path)!r} is not valid yaml{line}; fix: write one `key: value` per "
            "line (RecBole's yaml format)."
        ) from None
    if content is not None and not isinstance(content, dict):
        raise ConfigError(
            f"config_files: {str(path)!r} holds a {type(content).__name__}, not `key: value` "
            "lines; fix: write one `key: value` per line (RecBole's yaml format)."
        )


def build_config(
    backbone: str = "SASRec",
    dataset: str = "amazon-beauty",
    config_file_list: Sequence[str | os.PathLike] | None = None,
    config_dict: dict | None = None,
    base: bool = False,
    method: str | None = None,
) -> SequentialConfig:
    """RecBole config of a run of ``method`` (default FAERec; ``bare`` if ``base``) around
    ``backbone``; ``config['method']`` records the method."""
    register_metrics()
    try:
        method = resolve_method(method, base)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    backbone_class = get_sequential_model(backbone)
    user_files = [str(f) for f in config_file_list or []]
    for path in user_files:
        check_config_file(path)
    check_command_line()
    default_files = default_config_files(backbone, dataset, method)
    model_class = get_model(METHODS[method])
    try:
        config = SequentialConfig(
            model=model_class,
            dataset=dataset,
            config_file_list=default_files + user_files,
            config_dict={**(config_dict or {}), "backbone": backbone, "method": method},
        )
    except RECBOLE_CONFIG_ERRORS as exc:
        error = recbole_config_error(exc)
        if error is None:
            raise
        raise error from exc
    if method == "bare":
        # RecBole names the log and the checkpoints after config["model"]: a bare run is named
        # after its backbone (model.registry.model_class builds it as BareBackbone).
        config["model"] = backbone
    check_settings(config, default_files)
    check_backbone(backbone, backbone_class, config["loss_type"], config["train_mode"] or "prefix")
    check_text_prior_settings(config)
    if method == "faerec":
        check_faerec_settings(config)
    if method == "llmesr":
        check_llmesr_settings(config)
    if config["loss_type"] == "BCE":
        if config["train_neg_sample_args"]["distribution"] != "none":
            raise ConfigError(
                "train_neg_sample_args: the BCE loss samples its negative itself; set "
                "`train_neg_sample_args: ~` (the default) when `loss_type: BCE`."
            )
        config["MODEL_INPUT_TYPE"] = InputType.POINTWISE
    if config["loss_type"] == "BPR" and config["train_neg_sample_args"]["distribution"] == "none":
        raise ConfigError(
            "train_neg_sample_args: `loss_type: BPR` needs RecBole's negative sampler, e.g. "
            "`train_neg_sample_args: {distribution: uniform, sample_num: 1}`."
        )
    return config
