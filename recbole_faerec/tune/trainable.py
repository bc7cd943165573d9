"""The Ray Tune trainable: one trial trains one configuration and reports every evaluation.

A trial scores as the main command does. After every evaluation it reports the epoch's validation
result (``<metric>``, the model's own scores: the text prior is fitted after training), which the
scheduler compares. When training ends (its last evaluation or RecBole's early stop), the trial
fits the text prior on its best checkpoint (:func:`~recbole_faerec.pipeline.fit_scoring`, which
rewrites that checkpoint with the prior) and its last report carries the trial's objective:
``best_<metric>``, the validation score of the best checkpoint plus its prior, with the rest of
that validation result as ``scored_<key>``, the prior's weight as ``text_prior_weight`` and the
checkpoint holding the prior, which the sweep tests. ``scored`` tells whether a report's
``best_<metric>`` is of that final scorer (always, with ``text_prior: False``); a trial the
scheduler stops before training ends is not fitted, and is no candidate for the best
configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ray import air
from ray.air import session

from recbole_faerec.config import build_config
from recbole_faerec.pipeline import fit_scoring, prepare_run, scored_validation
from recbole_faerec.process import hidden_command_line, init_logger
from recbole_faerec.trainer import FAERecTrainer
from recbole_faerec.tune.spec import SweepSpec, trial_config_dict


class _ReportingTrainer(FAERecTrainer):
    """FAERecTrainer that keeps the last epoch's loss parts and validation result."""

    last_losses: tuple[float, ...] = ()
    last_valid_result: dict[str, float] = {}

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        losses = super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)
        self.last_losses = tuple(losses) if isinstance(losses, tuple) else (losses,)
        return losses

    def _valid_epoch(self, valid_data, show_progress=False):
        score, result = super()._valid_epoch(valid_data, show_progress)
        self.last_valid_result = dict(result)
        return score, result


def _report(metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
    """The single Ray reporting call (Ray >= 2.7: ``ray.train.report(metrics, ...)``)."""
    checkpoint = air.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
    session.report(metrics, checkpoint=checkpoint)


def loss_metrics(names: Sequence[str], losses: Sequence[float]) -> dict[str, float]:
    """``train_loss`` (the sum) and one ``train_loss_<name>`` per named part."""
    metrics = {"train_loss": float(sum(losses))}
    if len(losses) > 1:
        labels = names if len(names) == len(losses) else [str(i) for i in range(len(losses))]
        metrics.update({f"train_loss_{n}": float(v) for n, v in zip(labels, losses, strict=True)})
    return metrics


def faerec_trial(params: dict[str, Any], spec: SweepSpec) -> None:
    """Ray Tune trainable: train one configuration, reporting after every evaluation."""
    import ray
    import torch

    torch.set_num_threads(max(1, int(spec.cpus_per_trial)))
    config_dict = trial_config_dict(spec, params, session.get_trial_dir())
    config_dict["gpu_id"] = ",".join(str(i) for i in ray.get_gpu_ids())
    with hidden_command_line():
        config = build_config(
            spec.model, spec.dataset, spec.config_files, config_dict, method=spec.method
        )
    init_logger(config)
    _, train_data, valid_data, _, net, trainer = prepare_run(config, _ReportingTrainer)
    names = list(getattr(net, "loss_names", None) or [])
    prior = getattr(net, "text_prior", None)

    def report(epoch_idx: int, valid_score: float) -> None:
        finished = (
            epoch_idx + trainer.eval_step >= trainer.epochs
            or trainer.cur_step > trainer.stopping_step
        )
        metrics = {
            **trainer.last_valid_result,
            spec.metric: float(valid_score),
            f"best_{spec.metric}": float(trainer.best_valid_score),
            "epoch": epoch_idx + 1,
            "finished": finished,
            "scored": prior is None,
            **loss_metrics(names, trainer.last_losses),
        }
        if finished and prior is not None:
            metrics.update(final_scoring(trainer, train_data, valid_data, spec.metric))
            _report(metrics, trainer.checkpoint_dir)
            return
        improved = trainer.cur_step == 0
        _report(metrics, trainer.checkpoint_dir if improved else None)

    trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=report)


def final_scoring(trainer, train_data, valid_data, metric: str) -> dict[str, Any]:
    """A trial's objective with the main command's scorer: fit the text prior on the best
    checkpoint (and write it there), then score the validation split with it."""
    prior_scores = fit_scoring(trainer, train_data, valid_data, saved=True)
    score, result = scored_validation(trainer, valid_data)
    return {
        f"best_{metric}": float(score),
        f"best_{metric}_without_prior": float(prior_scores[0.0]),
        "text_prior_weight": float(trainer.model.text_prior.weight),
        **{f"scored_{key}": float(value) for key, value in result.items()},
        "scored": True,
    }
