"""FAERecTrainer: RecBole's Trainer plus the epoch hook and named loss parts.

The model owns its losses; this trainer only tells it the epoch (for the curriculum) before each
training epoch and logs every loss part under the name the model gives it.
"""

from __future__ import annotations

from recbole.trainer import Trainer
from recbole.utils import set_color

from recbole_faerec.metrics import install_collector


class FAERecTrainer(Trainer):
    """RecBole :class:`~recbole.trainer.Trainer` for the plugin's models."""

    def __init__(self, config, model) -> None:
        super().__init__(config, model)
        install_collector(self)

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        if hasattr(self.model, "set_epoch"):
            self.model.set_epoch(epoch_idx)
        return super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)

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
