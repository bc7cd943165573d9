"""The one set-up of a run, shared by every entry point: seed, data, model and trainer.

The seeding follows RecBole's ``run_recbole``: the seed is set before the dataset is built and
split, and set again (plus the process's rank) right before the model is built, so that a model's
initial weights do not depend on how much randomness the data pipeline drew. Training, sweeps,
reports, benchmarks and reloading a checkpoint all go through here, so they build the very same
run from the same config.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from recbole.utils import init_seed

from recbole_faerec.data.dataset import create_dataset, data_preparation
from recbole_faerec.model.registry import model_class
from recbole_faerec.trainer import FAERecTrainer


class PreparedRun(NamedTuple):
    """A run ready to train: its dataset, the three loaders, the model and the trainer."""

    dataset: Any
    train_data: Any
    valid_data: Any
    test_data: Any
    model: Any
    trainer: Any


def load_dataset(config) -> Any:
    """Seed, then build the dataset of ``config`` (writing bundled data and the LLM table
    cache on the way)."""
    init_seed(config["seed"], config["reproducibility"])
    return create_dataset(config)


def prepare_data(config) -> tuple[Any, Any, Any, Any]:
    """``(dataset, train_data, valid_data, test_data)`` of ``config``, seeded."""
    dataset = load_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    return dataset, train_data, valid_data, test_data


def build_model(config, train_data) -> Any:
    """Re-seed (plus the process's rank), then build the model of ``config`` on its device."""
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    return model_class(config)(config, train_data._dataset).to(config["device"])


def prepare_run(config, trainer_class: type[FAERecTrainer] = FAERecTrainer) -> PreparedRun:
    """Everything a run of ``config`` needs, built in the order that makes runs reproducible.

    Returns a :class:`PreparedRun` (a tuple ``(dataset, train_data, valid_data, test_data,
    model, trainer)``); the logger is the caller's to set up before (the dataset logs).
    """
    dataset, train_data, valid_data, test_data = prepare_data(config)
    model = build_model(config, train_data)
    return PreparedRun(
        dataset, train_data, valid_data, test_data, model, trainer_class(config, model)
    )
