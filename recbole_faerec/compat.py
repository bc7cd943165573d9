"""Every version shim the plugin needs, in one place, one comment each.

RecBole 1.2.1 predates torch 2.6, numpy 2 and pandas 3; the pins in ``setup.cfg`` keep numpy and
pandas on versions RecBole runs with. What cannot be pinned away is adjusted here, at import time
of :mod:`recbole_faerec`, so the rest of the code can call RecBole as documented.
"""

from __future__ import annotations

import os

from recbole.config import Config

_APPLIED = False


def apply() -> None:
    """Apply all shims once per process (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    # torch >= 2.6 loads checkpoints with ``weights_only=True`` by default, but RecBole's Trainer
    # (``resume_checkpoint`` and ``evaluate(load_best_model=True)``) stores its Config object in
    # the checkpoint and calls ``torch.load`` without ``weights_only``. The variable only affects
    # call sites that leave ``weights_only`` unset, and, being in the environment, it also reaches
    # Ray workers and subprocesses started after this import.
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    # RecBole 1.2.1's ``sequential_recommender/sine.py`` calls
    # ``torch.autograd.set_detect_anomaly(True)`` at import time, and importing any RecBole
    # sequential model imports it: every backward pass of every run then checks each gradient
    # for NaN (a debugging aid; about a quarter of a FAERec training step on CPU). The package is
    # imported here once and the switch turned back off; numerics are unchanged.
    import recbole.model.sequential_recommender  # noqa: F401
    import torch

    torch.autograd.set_detect_anomaly(False)
    # RecBole's metrics and data code use numpy aliases removed in numpy 1.24 (``np.float``...)
    # and put them back in ``Config.__init__`` (``compatibility_settings``). A process that only
    # unpickles a saved Config (``load_data_and_model``, a resumed sweep testing its best trial)
    # never runs that constructor, so the same aliases are set here.
    Config.compatibility_settings(Config.__new__(Config))
    _APPLIED = True


def worker_env() -> dict[str, str]:
    """Environment variables set by :func:`apply`, for processes started before the plugin is
    imported in them: Ray workers of an existing cluster get these through ``runtime_env``."""
    apply()
    return {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"]}


class SequentialConfig(Config):
    """RecBole's ``Config`` that accepts ``repeatable: False`` for sequential models.

    RecBole 1.2.1 raises in ``_set_default_parameters`` when a sequential model asks for
    ``repeatable: False``, because its full-sort loader has no history for sequential rows; the
    plugin's loader (:mod:`recbole_faerec.data.history`) has. The check is passed with
    ``repeatable`` set to True for the duration of the call, and the user's value is restored.
    """

    def _set_default_parameters(self) -> None:
        repeatable = self.final_config_dict.get("repeatable", True)
        self.final_config_dict["repeatable"] = True
        try:
            super()._set_default_parameters()
        finally:
            self.final_config_dict["repeatable"] = repeatable
