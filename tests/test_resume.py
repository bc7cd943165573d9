"""Determinism and exact resume of a training run, on the real amazon-beauty-sample."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import SAMPLE, same_metrics

from recbole_faerec.quick_start import run_recbole_faerec
from recbole_faerec.trainer import RESUME_SUFFIX

ROOT = Path(__file__).resolve().parents[1]


def _settings(fast_config: dict, folder: Path) -> dict:
    return {
        **fast_config,
        "checkpoint_dir": str(folder),
        "epochs": 4,
        "train_batch_size": 256,
        "stopping_step": 10,
    }


@pytest.mark.parametrize("base", [False, True], ids=["FAERec", "bare"])
def test_the_same_seed_gives_identical_metrics(fast_config, run_dir, base):
    settings = {**_settings(fast_config, run_dir / "a"), "epochs": 1}
    first = run_recbole_faerec("SASRec", SAMPLE, config_dict=settings, base=base)
    settings["checkpoint_dir"] = str(run_dir / "b")
    second = run_recbole_faerec("SASRec", SAMPLE, config_dict=settings, base=base)
    assert same_metrics(first["test_result"], second["test_result"])
    assert same_metrics(first["best_valid_result"], second["best_valid_result"])


def _wait_for_resume_state(folder: Path, process: subprocess.Popen, epoch: int) -> Path:
    """The resume file once it holds the state before training ``epoch``."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be interrupted"
        for path in folder.glob(f"*{RESUME_SUFFIX}"):
            state = torch.load(path, map_location="cpu", weights_only=False)
            if state["epoch"] + 1 >= epoch:
                return path
        time.sleep(0.02)
    raise AssertionError("no resume state was written")


def test_a_killed_run_resumes_to_the_same_test_metrics(fast_config, run_dir):
    uninterrupted = run_recbole_faerec(
        "SASRec", SAMPLE, config_dict=_settings(fast_config, run_dir / "whole")
    )

    folder = run_dir / "killed"
    flags = [f"--{k}={v}" for k, v in _settings(fast_config, folder).items() if v is not None]
    command = [sys.executable, str(ROOT / "run_recbole_faerec.py"), "--model=SASRec"]
    command += [f"--dataset={SAMPLE}", *flags]
    process = subprocess.Popen(
        command, cwd=run_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        resume_file = _wait_for_resume_state(folder, process, epoch=2)
        process.kill()
    finally:
        process.wait()
    state = torch.load(resume_file, map_location="cpu", weights_only=False)
    assert state["epoch"] + 1 < 4, "the run was killed before its last epoch"

    settings = {**_settings(fast_config, folder), "resume": str(resume_file)}
    resumed = run_recbole_faerec("SASRec", SAMPLE, config_dict=settings)
    assert same_metrics(resumed["test_result"], uninterrupted["test_result"])
    assert same_metrics(resumed["best_valid_result"], uninterrupted["best_valid_result"])
    assert Path(resumed["model_file"]).parent == folder
    # the time the killed process spent up to its state (at least one epoch) goes with the run
    assert uninterrupted["seconds_before_resume"] == 0.0
    assert resumed["seconds_before_resume"] == state["resume"]["elapsed_s"] > 0


def test_resume_without_a_checkpoint_is_a_one_line_error(capsys):
    from recbole_faerec.cli import main

    assert main(["--resume"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --resume needs the checkpoint")


def test_runs_started_in_the_same_second_write_different_checkpoints(
    fast_config, run_dir, monkeypatch
):
    import recbole.trainer.trainer

    from recbole_faerec.config import build_config
    from recbole_faerec.pipeline import prepare_run

    monkeypatch.setattr(recbole.trainer.trainer, "get_local_time", lambda: "Nov-30-2026_13-26-19")
    config = build_config("SASRec", SAMPLE, config_dict=fast_config, base=True)
    first, second = prepare_run(config).trainer, prepare_run(config).trainer
    assert first.saved_model_file != second.saved_model_file
    assert Path(first.saved_model_file).name.startswith("SASRec-")
    assert first.resume_file != second.resume_file


def test_a_bfloat16_checkpoint_scores_as_its_run_did_where_auto_means_float32_and_resumes_without_its_prior(  # noqa: E501
    fast_config, run_dir, monkeypatch, one_torch_thread
):
    from recbole.utils import calculate_valid_score

    from recbole_faerec.config import build_config
    from recbole_faerec.model import precision
    from recbole_faerec.pipeline import prepare_run
    from recbole_faerec.quick_start import load_data_and_model
    from recbole_faerec.trainer import FAERecTrainer

    settings = {**fast_config, "resume_state": False}
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: True)  # auto: bfloat16
    run = run_recbole_faerec("SASRec", SAMPLE, config_dict=settings)
    best = torch.load(run["model_file"], map_location="cpu", weights_only=False)
    assert best["config"]["step_precision"] == "auto"
    assert float(best["state_dict"]["text_prior.weight"]) == 12.0, "the run's prior is active"
    assert bool(best["state_dict"]["text_prior.bfloat16_product"])

    monkeypatch.setattr(precision, "native_bfloat16", lambda device: False)  # auto: float32
    config, model, _, train, valid, test = load_data_and_model(run["model_file"])
    assert model.text_prior.dtype == torch.bfloat16
    trainer = FAERecTrainer(config, model)
    trainer.eval_collector.data_collect(train)
    assert same_metrics(trainer.evaluate(test, load_best_model=False), run["test_result"])

    # --resume=<the rewritten best checkpoint>: training and early stopping see the model alone
    config = build_config("SASRec", SAMPLE, config_dict={**settings, "epochs": 2})
    prepared = prepare_run(config)
    prepared.trainer.resume_checkpoint(run["model_file"])
    prior = prepared.model.text_prior
    assert not prior.active and prior.dtype == torch.bfloat16
    prepared.trainer.eval_collector.data_collect(prepared.train_data)
    valid_result = prepared.trainer.evaluate(prepared.valid_data, load_best_model=False)
    assert calculate_valid_score(valid_result, "ndcg@10") == best["best_valid_score"]

    resumed = run_recbole_faerec(
        "SASRec", SAMPLE, config_dict={**settings, "epochs": 2, "resume": run["model_file"]}
    )
    config, model, _, train, _, test = load_data_and_model(resumed["model_file"])
    assert model.text_prior.dtype == torch.bfloat16 and model.text_prior.active
    trainer = FAERecTrainer(config, model)
    trainer.eval_collector.data_collect(train)
    assert same_metrics(trainer.evaluate(test, load_best_model=False), resumed["test_result"])
