"""Ray Tune sweeps (recbole_faerec.tune): search-space parsing, local sweeps, failures, resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SAMPLE, same_metrics

from recbole_faerec.config import build_config
from recbole_faerec.quick_start import objective_function, run_recbole_faerec
from recbole_faerec.report.plots import plot_sensitivity, sensitivity_grid
from recbole_faerec.tune import (
    PACKAGE_ROOT,
    SearchSpaceError,
    load_search_space,
    parse_search_space,
    ray_param_space,
    run_sweep,
    trials_markdown,
)
from recbole_faerec.tune.driver import default_name
from recbole_faerec.tune.spec import SweepSpec
from recbole_faerec.tune.summary import at_best_evaluation, write_best_config

ROOT = Path(__file__).resolve().parents[1]
TUNE_DIR = PACKAGE_ROOT / "properties" / "tune"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_parser_handles_every_distribution():
    space = parse_search_space(
        {
            "lambda": {"grid": [0.001, 0.01]},
            "loss_type": {"choice": ["CE", "BCE"]},
            "alpha": {"uniform": [0.1, 0.5]},
            "learning_rate": {"loguniform": [1e-4, 1e-2]},
            "n_layers": {"randint": [1, 3]},
            "epochs": 3,
            "topk": [5, 10],
            "train_neg_sample_args": {"constant": {"distribution": "uniform", "sample_num": 1}},
        }
    )
    assert {k: d.kind for k, d in space.items()} == {
        "lambda": "grid",
        "loss_type": "choice",
        "alpha": "uniform",
        "learning_rate": "loguniform",
        "n_layers": "randint",
        "epochs": "constant",
        "topk": "constant",
        "train_neg_sample_args": "constant",
    }
    params = ray_param_space(space)
    assert params["lambda"] == {"grid_search": [0.001, 0.01]}
    assert params["epochs"] == 3 and params["topk"] == [5, 10]
    assert params["train_neg_sample_args"] == {"distribution": "uniform", "sample_num": 1}
    rng = np.random.default_rng(0)
    assert set(params["loss_type"].sample(size=20, random_state=rng)) <= {"CE", "BCE"}
    assert all(0.1 <= a <= 0.5 for a in params["alpha"].sample(size=20, random_state=rng))
    lrs = params["learning_rate"].sample(size=20, random_state=rng)
    assert all(1e-4 <= lr <= 1e-2 for lr in lrs)
    assert set(params["n_layers"].sample(size=200, random_state=rng)) == {1, 2, 3}


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"normal": [0, 1]}, "unknown distribution 'normal'"),
        ({"grid": [1], "choice": [2]}, "exactly one distribution"),
        ({"grid": []}, "non-empty list"),
        ({"uniform": [1.0]}, "needs [lo, hi]"),
        ({"uniform": [0.5, 0.1]}, "lo < hi"),
        ({"loguniform": [0, 1]}, "lo > 0"),
        ({"randint": [1, 2.5]}, "integers"),
    ],
)
def test_parser_rejects_malformed_entries(tmp_path, entry, problem):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"alpha": entry}))
    with pytest.raises(SearchSpaceError) as info:
        load_search_space(path)
    message = str(info.value)
    assert str(path) in message and "'alpha'" in message and problem in message
    assert "valid kinds: grid" in message and "loguniform" in message


def test_shipped_spaces():
    paper = load_search_space(TUNE_DIR / "paper_grid.yaml")
    assert paper["lambda"].value == [0.001, 0.005, 0.01, 0.05, 0.1]
    assert paper["alpha"].value == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert [key for key, dim in paper.items() if dim.kind == "grid"] == ["lambda", "alpha"]
    assert paper["text_prior"].kind == "constant" and paper["text_prior"].value is False
    assert load_search_space(TUNE_DIR / "smoke.yaml")["alpha"].kind == "grid"


def test_the_search_space_language_needs_no_ray():
    code = (
        "import sys\n"
        "from recbole_faerec.tune import load_search_space\n"
        f"load_search_space({str(TUNE_DIR / 'smoke.yaml')!r})\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_python_m_tune_needs_a_search_space():
    done = subprocess.run(
        [sys.executable, "-m", "recbole_faerec.tune", "--model=SASRec"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "--tune SPACE_YAML is required" in done.stderr


@pytest.fixture
def ray_cleanup():
    """Ray is shut down after the test, whatever happened."""
    import ray

    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def llm_table(sample_data_path, tmp_path_factory) -> str:
    """A small random LLM table for the sample (keeps the sweeps fast; no model to run)."""
    inter = sample_data_path / "amazon-beauty-sample" / "amazon-beauty-sample.inter"
    items = pd.read_csv(inter, sep="\t", dtype=str)["item_id:token"].unique()
    vectors = np.random.default_rng(0).standard_normal((len(items), 16)).astype(np.float32)
    path = tmp_path_factory.mktemp("llm") / "table.npz"
    np.savez(path, items=items.astype(str), embeddings=vectors)
    return str(path)


@pytest.fixture
def sweep_overrides(fast_config, llm_table) -> dict:
    return {**fast_config, "llm_embedding_file": llm_table, "eval_batch_size": 1024}


def _space(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_local_sweep_writes_table_best_config_and_plot_and_scores_as_the_main_command(
    run_dir, fast_config, ray_cleanup, one_torch_thread
):
    space = _space(run_dir, {"alpha": {"grid": [0.1, 0.3]}, "lambda": 0.005})
    overrides = {**fast_config, "eval_batch_size": 1024}  # the sample's real LLM table
    outcome = run_sweep(
        space,
        "SASRec",
        "amazon-beauty-sample",
        overrides=overrides,
        num_cpus=2,
        scheduler="fifo",
        storage_path=run_dir / "ray_results",
    )
    exp = Path(outcome["experiment_dir"])
    table = pd.read_csv(exp / "trials.csv")
    assert len(table) == 2 and set(table["status"]) == {"completed"}
    assert sorted(table["alpha"]) == [0.1, 0.3] and (table["epochs"] == 1).all()
    assert table["best_ndcg@10"].notna().all()
    assert table["at_best_tailhit@10"].between(0, 1).all()
    assert "| trial" in (exp / "trials.md").read_text()
    assert (exp / "sensitivity.png").read_bytes()[:8] == PNG_MAGIC
    assert outcome["test_result"] and "ndcg@10" in outcome["test_result"]
    config = build_config(
        "SASRec", "amazon-beauty-sample", config_file_list=[outcome["best_config"]]
    )
    assert config["alpha"] == outcome["best_params"]["alpha"]
    assert config["lambda"] == 0.005 and config["hidden_size"] == 32

    # one scorer: each trial fitted its text prior, and its objective and test are the model +
    # prior; the best configuration, run with the main command, gives the same figures
    assert (table["text_prior_weight"] == 12.0).all()
    assert (table["best_ndcg@10"] > table["best_ndcg@10_without_prior"]).all()
    main = run_recbole_faerec(
        "SASRec", "amazon-beauty-sample", config_file_list=[outcome["best_config"]]
    )
    weight = main["text_prior"]["weight"]
    assert outcome["best_valid_score"] == main["text_prior"]["valid_scores"][f"{weight:g}"]
    best = outcome["table"].iloc[0]
    assert best["best_ndcg@10_without_prior"] == main["best_valid_score"]
    assert best["text_prior_weight"] == weight
    assert same_metrics(outcome["test_result"], dict(main["test_result"]))
    written = json.loads((exp / "test_result.json").read_text())
    assert written["text_prior_weight"] == weight

    for model_file in exp.rglob("*.pth"):
        model_file.unlink()
    with pytest.raises(FileNotFoundError, match=r"holds no \.pth model file; fix: rerun"):
        run_sweep(
            space,
            "SASRec",
            "amazon-beauty-sample",
            resume=True,
            num_cpus=2,
            storage_path=run_dir / "ray_results",
        )


def test_failed_trial_is_marked_and_resume_runs_it_again(
    run_dir, sweep_overrides, llm_table, ray_cleanup
):
    missing = run_dir / "later.npz"
    space = _space(run_dir, {"llm_embedding_file": {"grid": [llm_table, str(missing)]}})
    kwargs = {
        "overrides": sweep_overrides,
        "num_cpus": 2,
        "scheduler": "asha",
        "storage_path": run_dir / "ray_results",
        "test_best": False,
    }
    outcome = run_sweep(space, "SASRec", "amazon-beauty-sample", **kwargs)
    table = outcome["table"].set_index("llm_embedding_file")
    assert table.loc[llm_table, "status"] == "completed"
    assert table.loc[str(missing), "status"] == "failed"
    assert "llm_embedding_file" in table.loc[str(missing), "error"]
    assert outcome["best_params"] == {"llm_embedding_file": llm_table}
    with pytest.raises(FileExistsError, match="--resume"):
        run_sweep(space, "SASRec", "amazon-beauty-sample", **kwargs)
    shutil.copyfile(llm_table, missing)  # what failed the trial is mended: resume reruns it
    resumed = run_sweep(space, "SASRec", "amazon-beauty-sample", resume=True, **kwargs)
    assert resumed["experiment_dir"] == outcome["experiment_dir"]
    assert list(resumed["table"]["status"]) == ["completed", "completed"]


def test_tail_hit_is_read_at_the_first_best_evaluation():
    frame = pd.DataFrame({"ndcg@10": [0.1, 0.3, 0.3, 0.2], "tailhit@10": [0.01, 0.05, 0.07, 0.02]})
    result = types.SimpleNamespace(metrics_dataframe=frame)
    spec = types.SimpleNamespace(metric="ndcg@10", mode="max")
    assert at_best_evaluation(result, spec, "tailhit@10") == 0.05  # the epoch RecBole keeps
    spec.mode = "min"
    assert at_best_evaluation(result, spec, "tailhit@10") == 0.01
    assert np.isnan(at_best_evaluation(result, spec, "headhit@10"))
    assert np.isnan(at_best_evaluation(types.SimpleNamespace(metrics_dataframe=None), spec, "x"))


def test_sensitivity_grid_averages_repeated_trials_per_cell(tmp_path):
    table = pd.DataFrame(
        {
            "lambda": [0.001, 0.001, 0.01, 0.001, 0.01],
            "alpha": [0.1, 0.1, 0.1, 0.5, 0.5],
            "best_ndcg@10": [0.2, 0.4, 0.5, 0.6, 0.7],
            "at_best_tailhit@10": [np.nan] * 5,
            "status": ["completed"] * 4 + ["failed"],
        }
    )
    grid = sensitivity_grid(table, "lambda", "alpha", "best_ndcg@10")
    assert list(grid.index) == [0.1, 0.5] and list(grid.columns) == [0.001, 0.01]
    np.testing.assert_allclose(grid.to_numpy(), [[0.3, 0.5], [0.6, 0.7]])
    metrics = ["best_ndcg@10", "at_best_tailhit@10"]  # the tail column, all nan, is left out
    path = plot_sensitivity(table, ["alpha", "lambda"], metrics, tmp_path / "grid.png")
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_trials_markdown_keeps_digit_only_trial_ids_as_text():
    table = pd.DataFrame(
        {"trial": ["57262_00001", "57262_00002"], "alpha": [0.1, 0.3], "error": ["", ""]}
    )
    lines = trials_markdown(table).splitlines()
    assert lines[0].startswith("| trial ")
    assert lines[1].startswith("|:--")
    assert "| 57262_00001 |" in lines[2]


def _trial_states(exp_dir: Path) -> dict[str, str]:
    """Ray Tune's saved status of every trial (what a resume starts from), by trial id."""
    states = {}
    for state_file in exp_dir.glob("experiment_state-*.json"):
        try:
            saved = json.loads(state_file.read_text())
        except (OSError, ValueError):
            continue
        for trial_json in saved["checkpoints"]:
            trial = json.loads(trial_json)
            states[trial["trial_id"]] = trial["status"]
    return states


def _sweep_command(space: Path, storage: Path, overrides: dict) -> list[str]:
    flags = [f"--{key}={value}" for key, value in overrides.items() if value is not None]
    return [
        sys.executable,
        str(ROOT / "run_recbole_faerec.py"),
        f"--tune={space}",
        "--model=SASRec",
        "--dataset=amazon-beauty-sample",
        "--scheduler=fifo",
        "--max-concurrent=1",
        "--num-cpus=1",
        f"--storage-path={storage}",
        "--name=killed",
        *flags,
    ]


def _results_by_trial(exp_dir: Path) -> dict[str, bytes]:
    return {path.parent.name: path.read_bytes() for path in exp_dir.glob("*/result.json")}


def test_a_sweep_killed_mid_trial_resumes_without_rerunning_finished_trials(
    run_dir, sweep_overrides
):
    space = _space(run_dir, {"alpha": {"grid": [0.1, 0.2, 0.3]}})
    storage = run_dir / "ray_results"
    exp_dir = storage / "killed"
    command = _sweep_command(space, storage, {**sweep_overrides, "epochs": 3})
    # Ray saves the experiment state at every step: the state read here is what a resume reads.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TUNE_GLOBAL_CHECKPOINT_S": "0"}
    driver = subprocess.Popen(
        command,
        cwd=run_dir,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert driver.poll() is None, "the sweep ended before it could be interrupted"
            states = _trial_states(exp_dir)
            if "TERMINATED" in states.values() and "RUNNING" in states.values():
                break
            time.sleep(0.2)
        else:
            raise AssertionError("no trial finished while another one was running")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    finished = sorted(trial for trial, status in states.items() if status == "TERMINATED")
    before = _results_by_trial(exp_dir)

    resume = [*_sweep_command(space, storage, {}), "--resume"]
    done = subprocess.run(resume, cwd=run_dir, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    table = pd.read_csv(exp_dir / "trials.csv", dtype={"trial": str})
    assert len(table) == 3 and set(table["status"]) == {"completed"}
    assert sorted(table["alpha"]) == [0.1, 0.2, 0.3]
    after = _results_by_trial(exp_dir)
    assert len(after) == 3
    finished_folders = [folder for folder in before if any(t in folder for t in finished)]
    assert finished_folders, f"no trial folder of the finished trials {finished} in {exp_dir}"
    for folder in finished_folders:
        assert after[folder] == before[folder], f"the finished trial {folder} was run again"


def test_the_objective_function_validates_and_tests_with_one_scorer(fast_config, one_torch_thread):
    result = objective_function({**fast_config, "backbone": "SASRec", "dataset": SAMPLE})
    prior = result["text_prior"]
    assert prior["weight"] == 12.0  # the run tests with its fitted prior
    assert result["best_valid_score"] == prior["valid_scores"]["12"] > prior["valid_scores"]["0"]
    assert result["best_valid_result"]["ndcg@10"] == result["best_valid_score"]


def test_a_sweep_names_its_method_in_its_folder_and_its_best_config(tmp_path):
    assert default_name("SASRec", "yelp", "grid.yaml", "llmesr") == "LLMESR-SASRec-yelp-grid"
    assert default_name("SASRec", "yelp", "grid.yaml", "bare") == "base-SASRec-yelp-grid"
    assert default_name("SASRec", "yelp", "grid.yaml", "faerec") == "FAERec-SASRec-yelp-grid"
    spec = SweepSpec(
        model="SASRec",
        dataset="yelp",
        method="llmesr",
        space_file="grid.yaml",
        config_files=[],
        overrides={"epochs": 3},
        data_path="dataset",
        seed=2020,
        metric="ndcg@10",
        mode="max",
        max_t=3,
    )
    text = write_best_config(tmp_path / "best.yaml", spec, {"llmesr_distill_weight": 0.2}, 0.01)
    header = text.read_text().splitlines()
    assert "LLM-ESR(SASRec) on yelp" in header[1]
    assert "--model=SASRec --dataset=yelp --method=llmesr --config_files=" in header[2]
    assert yaml.safe_load(text.read_text()) == {"epochs": 3, "llmesr_distill_weight": 0.2}
