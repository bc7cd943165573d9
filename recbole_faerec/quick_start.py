"""Python API mirroring :mod:`recbole.quick_start` for FAERec runs."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Sequence
from logging import getLogger
from pathlib import Path

import torch
from recbole.utils import get_environment, set_color

from recbole_faerec.config import build_config
from recbole_faerec.config_checks import check_size
from recbole_faerec.metrics import register_metrics
from recbole_faerec.model.registry import method_title
from recbole_faerec.pipeline import (
    build_model,
    fit_scoring,
    prepare_data,
    prepare_run,
    scored_validation,
)
from recbole_faerec.process import init_logger
from recbole_faerec.results import format_results_table, save_results_json
from recbole_faerec.trainer import FAERecTrainer


def _log_file() -> Path | None:
    for handler in getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename)
    return None


def run_recbole_faerec(
    model: str = "SASRec",
    dataset: str = "amazon-beauty",
    config_file_list: Sequence[str | os.PathLike] | None = None,
    config_dict: dict | None = None,
    saved: bool = True,
    base: bool = False,
    method: str | None = None,
) -> dict:
    """Train and test ``method`` (FAERec by default; :data:`~.model.registry.METHODS`) around the
    backbone ``model`` on ``dataset``; ``base`` is ``method="bare"``.

    Returns RecBole's result dict (``best_valid_score``, ``best_valid_result``, ``test_result``,
    ...) plus ``model_file`` (the best checkpoint), ``results_file`` (the JSON results) and
    ``seconds_before_resume`` (what a resumed run took before it was stopped; 0 otherwise).
    """
    config = build_config(model, dataset, config_file_list, config_dict, base, method)
    init_logger(config)
    logger = getLogger()
    logger.info(sys.argv)
    logger.info(config)

    _, train_data, valid_data, test_data, net, trainer = prepare_run(config)
    logger.info(net)
    if config["resume"]:
        trainer.resume_checkpoint(config["resume"])
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"]
    )
    prior_scores = fit_scoring(trainer, train_data, valid_data, saved)
    test_result = trainer.evaluate(
        test_data, load_best_model=saved, show_progress=config["show_progress"]
    )
    test_without_prior = evaluate_without_prior(trainer, test_data)
    logger.info("The running environment:\n" + get_environment(config).draw())
    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")

    title = f"{run_title(model, config['method'], trainer.model)} on {dataset} (test)"
    logger.info(f"{title}\n{format_results_table(test_result, config['topk'])}")
    if not config["single_spec"]:
        torch.distributed.barrier()  # every rank is done with the group before any tears it down
        torch.distributed.destroy_process_group()
    log_file = _log_file()
    results_file = None
    if log_file is not None:
        results_file = log_file.with_suffix(".results.json")
        save_results_json(
            test_result,
            results_file,
            model=config["model"],
            backbone=model,
            dataset=dataset,
            best_valid_result=dict(best_valid_result or {}),
            text_prior=text_prior_record(trainer.model, prior_scores, test_without_prior),
        )
    return {
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
        "text_prior": text_prior_record(trainer.model, prior_scores, test_without_prior),
        "model_file": trainer.saved_model_file if saved else None,
        "results_file": str(results_file) if results_file else None,
        "seconds_before_resume": trainer.seconds_before_resume,
    }


def run_title(backbone: str, method: str, model) -> str:
    """What a run tested: the method around the backbone, and the text prior if it is on."""
    title = method_title(method, backbone)
    prior = getattr(model, "text_prior", None)
    return f"{title} + text prior" if prior is not None and prior.active else title


def evaluate_without_prior(trainer, test_data) -> dict | None:
    """Test metrics of the model's own scores, when the run tests with an active text prior (the
    same checkpoint, the prior's weight set to 0 for this evaluation only)."""
    prior = getattr(trainer.model, "text_prior", None)
    if prior is None or not prior.active:
        return None
    weight = prior.weight.clone()
    prior.weight.zero_()
    try:
        return trainer.evaluate(test_data, load_best_model=False)
    finally:
        prior.weight.copy_(weight)


def text_prior_record(model, valid_scores: dict | None, test_without: dict | None) -> dict | None:
    """The text prior's part of a run's results: the chosen weight, the validation score of
    every weight tried and the test metrics without the prior; None without a prior."""
    prior = getattr(model, "text_prior", None)
    if prior is None:
        return None
    return {
        "weight": float(prior.weight),
        "valid_scores": {f"{w:g}": score for w, score in (valid_scores or {}).items()},
        "test_result_without": dict(test_without) if test_without is not None else None,
    }


def run(
    model: str,
    dataset: str,
    config_file_list: Sequence[str | os.PathLike] | None = None,
    config_dict: dict | None = None,
    saved: bool = True,
    nproc: int = 1,
    base: bool = False,
    method: str | None = None,
) -> dict | None:
    """Run in this process, or in ``nproc`` spawned processes (RecBole's distributed mode)."""
    check_size("nproc", nproc, example=2, setting=False)
    if nproc == 1:
        return run_recbole_faerec(
            model, dataset, config_file_list, config_dict, saved, base, method
        )
    import torch.multiprocessing as mp

    queue = mp.get_context("spawn").SimpleQueue()
    config = build_config(model, dataset, config_file_list, config_dict, base, method)
    # RecBole's processes create these with check-then-create, which races when they start together
    for folder in (Path("log") / config["model"], Path(config["checkpoint_dir"])):
        folder.mkdir(parents=True, exist_ok=True)
    ip, port = distributed_address(config)
    config_dict = {
        **(config_dict or {}),
        "world_size": nproc,
        "ip": ip,
        "port": port,
        "nproc": nproc,
        "offset": 0,
    }
    args = (model, dataset, config_file_list, config_dict, saved, config["method"], queue)
    mp.spawn(_run_rank, args=args, nprocs=nproc, join=True)
    return None if queue.empty() else queue.get()


def free_port() -> int:
    """A TCP port that is free on this machine right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def distributed_address(config) -> tuple[str, str]:
    """``ip`` and ``port`` of the process group: the config's (command line, dict or yaml), else
    localhost and a free port."""
    return str(config["ip"] or "localhost"), str(config["port"] or free_port())


def _run_rank(rank: int, model, dataset, config_file_list, config_dict, saved, method, queue):
    result = run_recbole_faerec(
        model, dataset, config_file_list, {**config_dict, "local_rank": rank}, saved, method=method
    )
    if rank == 0:
        queue.put(result)


def objective_function(
    config_dict: dict | None = None,
    config_file_list: Sequence[str | os.PathLike] | None = None,
    saved: bool = True,
) -> dict:
    """RecBole-style objective: train with ``config_dict`` and return validation and test results.

    Both are those of the scorer the run tests with, as in :func:`run_recbole_faerec`: with the
    text prior on, ``best_valid_score`` and ``best_valid_result`` are the validation split scored
    by the best checkpoint plus its fitted prior (``text_prior`` has the weight and the score of
    every weight tried), so a search over this objective selects on what it tests.

    ``config_dict`` names the backbone (``backbone``, default SASRec), the dataset and the
    ``method`` (default FAERec; ``base: True`` for the bare backbone).
    """
    config_dict = dict(config_dict or {})
    backbone = config_dict.pop("backbone", "SASRec")
    dataset = config_dict.pop("dataset", "amazon-beauty")
    base = bool(config_dict.pop("base", False))
    method = config_dict.pop("method", None)
    config = build_config(backbone, dataset, config_file_list, config_dict, base, method)
    init_logger(config)
    logging.basicConfig(level=logging.ERROR)
    _, train_data, valid_data, test_data, _, trainer = prepare_run(config)
    if config["resume"]:
        trainer.resume_checkpoint(config["resume"])
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, verbose=False, saved=saved
    )
    prior_scores = fit_scoring(trainer, train_data, valid_data, saved)
    if prior_scores is not None:  # validation and test with one scorer: the model + its prior
        best_valid_score, best_valid_result = scored_validation(trainer, valid_data)
    test_result = trainer.evaluate(test_data, load_best_model=saved)
    return {
        "model": config["model"],
        "backbone": backbone,
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
        "text_prior": text_prior_record(trainer.model, prior_scores, None),
    }


def load_data_and_model(model_file: str | os.PathLike) -> tuple:
    """Load a saved FAERec (or bare backbone) checkpoint with its data.

    Returns ``(config, model, dataset, train_data, valid_data, test_data)`` like RecBole.
    """
    register_metrics()
    checkpoint = torch.load(model_file, map_location="cpu", weights_only=False)
    config = checkpoint["config"]
    if not config["single_spec"]:
        # saved by a process group's rank 0: loaded and evaluated in this one process
        config["single_spec"], config["local_rank"] = True, 0
    init_logger(config)
    data, train_data, valid_data, test_data = prepare_data(config)
    net = build_model(config, train_data)
    net.load_state_dict(checkpoint["state_dict"])
    net.load_other_parameter(checkpoint.get("other_parameter"))
    return config, net, data, train_data, valid_data, test_data


def rescore_saved_run(model_file: str | os.PathLike) -> dict:
    """Fit the scoring of a saved run again (its text prior) with this code, on the run's own
    best checkpoint and training split, write the checkpoint back and test it; the weights the
    run trained are not touched.

    Returns the dict of :func:`run_recbole_faerec` without training's entries:
    ``best_valid_result`` (the model's own scores on validation), ``test_result``,
    ``text_prior`` and ``model_file``.
    """
    config, model, _, train_data, valid_data, test_data = load_data_and_model(model_file)
    trainer = FAERecTrainer(config, model)
    trainer.saved_model_file = str(model_file)
    trainer.eval_collector.data_collect(train_data)
    prior_scores = fit_scoring(trainer, train_data, valid_data, saved=True)
    valid_without = evaluate_without_prior(trainer, valid_data)
    if valid_without is None:
        valid_without = trainer.evaluate(valid_data, load_best_model=False)
    test_result = trainer.evaluate(test_data, load_best_model=False)
    return {
        "best_valid_result": valid_without,
        "test_result": test_result,
        "text_prior": text_prior_record(
            model, prior_scores, evaluate_without_prior(trainer, test_data)
        ),
        "model_file": str(model_file),
    }
