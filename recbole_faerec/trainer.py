"""FAERecTrainer: RecBole's Trainer plus the epoch hook, named loss parts and exact resume.

The model owns its losses; this trainer only tells it the epoch (for the curriculum) before each
training epoch and logs every loss part under the name the model gives it.

Resume: before every training epoch (with ``resume_state: True``) the trainer writes
``<checkpoint>-resume.pth`` atomically, next to RecBole's best checkpoint: model, optimizer,
early-stopping counters, the best validation result so far, the random states of torch, numpy
and Python, the training loader's shuffling generator and the seconds the run has taken so far.
:meth:`FAERecTrainer.resume_checkpoint` (``--resume=FILE``) restores all of it, so a run killed in
epoch k and resumed continues exactly as if it had never stopped. RecBole's own checkpoints (the
best epoch, no random states) are accepted too and resume RecBole's way, with the text prior that
a rewritten best checkpoint holds switched off until training ends.
"""

from __future__ import annotations

import os
import random
import secrets
import time
from pathlib import Path

import numpy as np
import torch
from recbole.trainer import Trainer
from recbole.utils import set_color

from recbole_faerec.collector import install_collector

RESUME_SUFFIX = "-resume.pth"


def resume_file_for(model_file: str | os.PathLike) -> Path:
    """Where the per-epoch resume state of the run whose best checkpoint is ``model_file`` goes."""
    path = Path(model_file)
    return path.with_name(path.stem + RESUME_SUFFIX)


def unique_checkpoint_file(model_file: str | os.PathLike) -> str:
    """RecBole's ``<model>-<time>.pth`` with a random suffix: RecBole's name changes once a second,
    so two runs started in the same second (two datasets side by side, a sweep's trials) would
    write one file and each test the other's model. The suffix comes from :mod:`secrets`, which
    draws none of the seeded random states."""
    path = Path(model_file)
    return str(path.with_name(f"{path.stem}-{secrets.token_hex(3)}{path.suffix}"))


class FAERecTrainer(Trainer):
    """RecBole :class:`~recbole.trainer.Trainer` for the plugin's models."""

    def __init__(self, config, model) -> None:
        super().__init__(config, model)
        install_collector(self)
        self.saved_model_file = unique_checkpoint_file(self.saved_model_file)
        if not config["single_spec"]:
            # every process loads the checkpoint that rank 0 writes (RecBole names it by the clock)
            name = [self.saved_model_file]
            torch.distributed.broadcast_object_list(name, src=0)
            self.saved_model_file = name[0]
        self.write_resume_state = bool(config["resume_state"])
        self._loader_state: torch.Tensor | None = None
        self._started = time.perf_counter()
        #: Seconds the run took before this process, up to the resume state it continues from.
        self.seconds_before_resume = 0.0

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        """RecBole's evaluation; under a process group every metric is computed on the rows of
        all processes (gathered by the collector), so it equals a single process's."""
        if not self.config["single_spec"]:
            self.eval_collector.expect_rows(
                eval_data.sample_size,
                torch.distributed.get_rank(),
                torch.distributed.get_world_size(),
            )
            if load_best_model and model_file is None:
                torch.distributed.barrier()  # rank 0 has finished writing the best checkpoint
        return super().evaluate(eval_data, load_best_model, model_file, show_progress)

    def _map_reduce(self, result, num_sample):
        """The metrics are already those of all rows (see :meth:`evaluate`): nothing to average
        (RecBole's version averages per-process metrics, wrong for subsets and coverage)."""
        return result

    @property
    def resume_file(self) -> Path:
        """The resume state written before every training epoch."""
        return resume_file_for(self.saved_model_file)

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        generator = getattr(train_data, "generator", None)
        if self._loader_state is not None and generator is not None:
            generator.set_state(self._loader_state)
            self._loader_state = None
        if self.write_resume_state:
            self._save_resume_state(epoch_idx, generator)
        if hasattr(self.model, "set_epoch"):
            self.model.set_epoch(epoch_idx)
        return super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)

    def _save_resume_state(self, epoch_idx: int, generator: torch.Generator | None) -> None:
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return
        state = {
            "config": self.config,
            "epoch": epoch_idx - 1,  # the last finished epoch, as in RecBole's checkpoints
            "cur_step": self.cur_step,
            "best_valid_score": self.best_valid_score,
            "state_dict": self.model.state_dict(),
            "other_parameter": self.model.other_parameter(),
            "optimizer": self.optimizer.state_dict(),
            "resume": {
                "best_valid_result": self.best_valid_result,
                "best_model_file": str(self.saved_model_file),
                "torch_rng": torch.get_rng_state(),
                "numpy_rng": np.random.get_state(),
                "python_rng": random.getstate(),
                "loader_generator": None if generator is None else generator.get_state(),
                "elapsed_s": self.seconds_before_resume + time.perf_counter() - self._started,
            },
        }
        target = self.resume_file
        partial = target.with_name(target.name + ".partial")
        torch.save(state, partial, pickle_protocol=4)
        os.replace(partial, target)

    def resume_checkpoint(self, resume_file) -> None:
        """Continue from ``resume_file``: a ``-resume.pth`` state continues exactly where the
        run stopped (random states, loader order, best result so far); a RecBole checkpoint
        continues RecBole's way from its epoch.

        A best checkpoint that the pipeline rewrote with a fitted text prior
        (:func:`~recbole_faerec.pipeline.fit_scoring`) is accepted too: its prior's weight is set
        back to 0, so that training and early stopping see the model's own scores, as the saved
        best score does; the prior is fitted again after training. Its precision stays the
        saved one."""
        super().resume_checkpoint(resume_file)
        prior = getattr(self.model, "text_prior", None)
        if prior is not None and prior.active:
            prior.weight.zero_()
            self.logger.info(
                "Text prior: off while training resumes (the checkpoint held a fitted prior); it "
                "is fitted again after training"
            )
        checkpoint = torch.load(str(resume_file), map_location=self.device, weights_only=False)
        extra = checkpoint.get("resume")
        if extra is None:
            return
        self.best_valid_result = extra["best_valid_result"]
        self.saved_model_file = extra["best_model_file"]
        torch.set_rng_state(extra["torch_rng"])
        np.random.set_state(extra["numpy_rng"])
        random.setstate(extra["python_rng"])
        self._loader_state = extra["loader_generator"]
        self.seconds_before_resume = float(extra.get("elapsed_s", 0.0))  # older states: unknown

    def _generate_train_loss_output(self, epoch_idx, s_time, e_time, losses):
        names = getattr(self.model, "loss_names", None)
        if not isinstance(losses, tuple) or names is None or len(names) != len(losses):
            return super()._generate_train_loss_output(epoch_idx, s_time, e_time, losses)
        places = self.config["loss_decimal_place"] or 4
        parts = [f"{set_color('train_loss', 'blue')}: {sum(losses):.{places}f}"]
        named = zip(names, losses, strict=True)
        parts += [f"{set_color(name, 'blue')}: {value:.{places}f}" for name, value in named]
        head = set_color("epoch %d training", "green") % epoch_idx
        time = set_color("time", "blue")
        return f"{head} [{time}: {e_time - s_time:.2f}s, {', '.join(parts)}]"
