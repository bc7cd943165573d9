"""``--nproc``: a gloo process group of CPU processes trains, and its evaluation is exact."""

from __future__ import annotations

import math

from recbole_faerec.quick_start import load_data_and_model, run
from recbole_faerec.trainer import FAERecTrainer

SAMPLE = "amazon-beauty-sample"


def _same(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(
        first[k] == second[k] or (math.isnan(first[k]) and math.isnan(second[k])) for k in first
    )


def test_two_cpu_processes_evaluate_every_metric_like_one(fast_config, run_dir):
    settings = {**fast_config, "checkpoint_dir": str(run_dir / "saved"), "resume_state": False}
    result = run("SASRec", SAMPLE, config_dict=settings, nproc=2)
    assert result is not None and result["model_file"]

    config, model, _, train_data, _, test_data = load_data_and_model(result["model_file"])
    trainer = FAERecTrainer(config, model)
    trainer.eval_collector.data_collect(train_data)
    single = trainer.evaluate(test_data, load_best_model=False)
    assert {"hit@10", "tailhit@10", "coverage@10", "grouphit[1-4]@10"} <= set(single)
    assert _same(dict(result["test_result"]), dict(single))
