"""The one set-up of a run, shared by every entry point: seed, data, model and trainer.

The seeding follows RecBole's ``run_recbole``: the seed is set before the dataset is built and
split, and set again (plus the process's rank) right before the model is built, so that a model's
initial weights do not depend on how much randomness the data pipeline drew. Training, sweeps,
reports, benchmarks and reloading a checkpoint all go through here, so they build the very same
run from the same config. After training, :func:`fit_scoring` fits what scoring needs beyond the
trained weights (the text prior) and saves it into the best checkpoint.
"""

from __future__ import annotations

from logging import getLogger
from typing import Any, NamedTuple

import torch
from recbole.utils import calculate_valid_score, init_seed

from recbole_faerec.compat import silence_recbole_dataset_warnings
from recbole_faerec.data.dataset import create_dataset, data_preparation
from recbole_faerec.io import atomic_open
from recbole_faerec.model.registry import model_class
from recbole_faerec.text_prior import choose_weight, fit_text_prior
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
    cache on the way). RecBole's pandas FutureWarnings of the load are silenced (the filter is
    set at import; set again here for a caller whose ``warnings.catch_warnings`` dropped it)."""
    silence_recbole_dataset_warnings()
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


def fit_scoring(trainer, train_data, valid_data, saved: bool = True) -> dict[float, float] | None:
    """After training: put the best checkpoint's weights back in the model, fit its text prior
    on the training split, choose the prior's weight on the validation split and write the best
    checkpoint again with the prior, so that loading it scores exactly as this run does.

    Under a process group, rank 0 alone fits the prior and broadcasts it to every rank
    (:func:`broadcast_prior`); the weight is chosen on the validation rows of all ranks, and rank
    0's choice is broadcast too, so every rank scores alike.

    Returns the validation score of every weight tried, or None when the model has no prior.
    Logs which scorer the run tests with.
    """
    model, config = trainer.model, trainer.config
    logger = getLogger()
    if model.text_prior is None:
        logger.info("Scorer: the model's own scores (text_prior: False)")
        return None
    distributed = not config["single_spec"]
    if saved:
        if distributed:
            torch.distributed.barrier()  # rank 0 has finished writing the best checkpoint
        checkpoint = torch.load(
            trainer.saved_model_file, map_location=trainer.device, weights_only=False
        )
        model.load_state_dict(checkpoint["state_dict"])
        model.load_other_parameter(checkpoint.get("other_parameter"))
    if not distributed or config["local_rank"] == 0:
        fit_text_prior(model, config, train_data._dataset)
    if distributed:
        broadcast_prior(model.text_prior)

    def validate() -> float:
        result = trainer.evaluate(valid_data, load_best_model=False)
        return calculate_valid_score(result, trainer.valid_metric)

    bigger = config["valid_metric_bigger"]
    scores = choose_weight(model.text_prior, config["text_prior_weights"], validate, bigger)
    if distributed:
        torch.distributed.broadcast(model.text_prior.weight, src=0)
    if saved and (not distributed or config["local_rank"] == 0):
        checkpoint["state_dict"] = model.state_dict()
        with atomic_open(trainer.saved_model_file, "wb") as handle:
            torch.save(checkpoint, handle)
    if distributed:
        torch.distributed.barrier()  # the checkpoint holds the prior before any rank loads it
    weight = float(model.text_prior.weight)
    scorer = "the model's own scores" if weight == 0 else "the model's scores + text prior"
    logger.info(f"Scorer: {scorer} (text_prior weight {weight:g}, chosen on validation)")
    return scores


def scored_validation(trainer, valid_data) -> tuple[float, dict]:
    """``(score, result)`` of the validation split under the scorer the run tests with (after
    :func:`fit_scoring`: the model plus its fitted text prior)."""
    result = trainer.evaluate(valid_data, load_best_model=False)
    return calculate_valid_score(result, trainer.valid_metric), result


def broadcast_prior(prior) -> None:
    """Rank 0's fitted text prior (its item vectors and transition) on every rank."""
    for buffer in (prior.item_vectors, prior.transition):
        torch.distributed.broadcast(buffer, src=0)
