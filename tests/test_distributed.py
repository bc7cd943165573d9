"""``--nproc``: a gloo process group of CPU processes trains, its evaluation is exact, and rank 0's
fitted text prior is every rank's."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.multiprocessing as mp
from conftest import SAMPLE, same_metrics

from recbole_faerec.config import build_config
from recbole_faerec.pipeline import fit_scoring, prepare_run
from recbole_faerec.quick_start import free_port, load_data_and_model, run
from recbole_faerec.trainer import FAERecTrainer


def test_two_cpu_processes_evaluate_every_metric_like_one(fast_config, run_dir):
    settings = {**fast_config, "checkpoint_dir": str(run_dir / "saved"), "resume_state": False}
    result = run("SASRec", SAMPLE, config_dict=settings, nproc=2)
    assert result is not None and result["model_file"]
    assert [path.name for path in (run_dir / "saved").glob("*.pth")] == [
        Path(result["model_file"]).name
    ]
    assert len(list((run_dir / "log").rglob("*.log"))) == 1

    assert result["text_prior"]["weight"] == 12.0  # the run tested with a fitted, active prior
    config, model, _, train_data, _, test_data = load_data_and_model(result["model_file"])
    assert model.text_prior.active and model.text_prior.item_vectors.abs().sum() > 0
    trainer = FAERecTrainer(config, model)
    trainer.eval_collector.data_collect(train_data)
    single = trainer.evaluate(test_data, load_best_model=False)
    assert {"hit@10", "tailhit@10", "coverage@10", "grouphit[1-4]@10"} <= set(single)
    assert same_metrics(dict(result["test_result"]), dict(single))


def _train_one_epoch(rank: int, settings: dict, queue) -> None:
    """One rank of a two-process FAERec run: train an epoch on its half of the batches, then fit
    the scoring; report whether both ranks hold the same parameters (and that training moved
    them), how often each rank fitted the text prior and every rank's prior."""
    from recbole_faerec import pipeline

    fits = []
    fit = pipeline.fit_text_prior
    pipeline.fit_text_prior = lambda *args: (fits.append(rank), fit(*args))[1]
    config = build_config("SASRec", SAMPLE, config_dict={**settings, "local_rank": rank})
    prepared = prepare_run(config)
    before = torch.cat([p.detach().flatten().clone() for p in prepared.model.parameters()])
    prepared.trainer._train_epoch(prepared.train_data, 0)
    after = torch.cat([p.detach().flatten() for p in prepared.model.parameters()])
    both: list = [None, None]
    torch.distributed.all_gather_object(both, after)
    prepared.trainer.eval_collector.data_collect(prepared.train_data)
    fit_scoring(prepared.trainer, prepared.train_data, prepared.valid_data, saved=False)
    prior = {k: v.clone() for k, v in prepared.model.text_prior.state_dict().items()}
    priors: list = [None, None]
    torch.distributed.all_gather_object(priors, (len(fits), prior))
    if rank == 0:
        (fits_0, prior_0), (fits_1, prior_1) = priors
        fitted = {
            "weight": float(prior_0["weight"]),
            "vectors": bool(prior_0["item_vectors"].abs().sum() > 0),
            "transition": not torch.equal(
                prior_0["transition"], torch.eye(len(prior_0["transition"]))
            ),
            "equal": prior_0.keys() == prior_1.keys()
            and all(torch.equal(prior_0[key], prior_1[key]) for key in prior_0),
        }
        queue.put(
            (
                torch.equal(both[0], both[1]),
                not torch.equal(before, after),
                (fits_0, fits_1),
                fitted,
            )
        )
    torch.distributed.barrier()  # neither rank tears the group down while the other is still in it
    torch.distributed.destroy_process_group()


def test_every_faerec_parameter_stays_synchronised_across_processes(fast_config, run_dir):
    settings = {
        **fast_config,
        "world_size": 2,
        "nproc": 2,
        "offset": 0,
        "ip": "localhost",
        "port": free_port(),
        "train_batch_size": 256,
    }
    Path(settings["checkpoint_dir"]).mkdir(parents=True, exist_ok=True)  # as run() does
    queue = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_train_one_epoch, args=(settings, queue), nprocs=2, join=True)
    same, trained, fits, prior = queue.get()
    assert trained and same
    assert fits == (1, 0)  # rank 0 fits the text prior, rank 1 receives it
    assert prior == {"weight": 12.0, "vectors": True, "transition": True, "equal": True}
