"""Model lookup by name: the plugin's own models first, then RecBole's.

A bare (``--base``) run is named after its backbone, ``config['model'] == config['backbone']``
(e.g. ``SASRec``), because RecBole names a run's log folder and file and its checkpoints after
``config['model']``; :func:`model_class` maps such a config to :class:`BareBackbone`, not to
RecBole's class of that name.
"""

from __future__ import annotations

import importlib

from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import get_model as recbole_get_model

_PLUGIN_MODELS = {
    "FAERec": "recbole_faerec.model.faerec",
    "BareBackbone": "recbole_faerec.model.bare",
    "FMLPRec": "recbole_faerec.model.sequential_recommender.fmlprec",
    "LRURec": "recbole_faerec.model.sequential_recommender.lrurec",
    "gMLP": "recbole_faerec.model.sequential_recommender.gmlp",
}


def get_model(name: str) -> type:
    """Class of model ``name``, a plugin model or any RecBole model."""
    if name in _PLUGIN_MODELS:
        return getattr(importlib.import_module(_PLUGIN_MODELS[name]), name)
    return recbole_get_model(name)


def model_class(config) -> type:
    """Class that builds the model of ``config``: the bare backbone for a bare run (named after
    its backbone), else the model ``config['model']`` names."""
    name = config["model"]
    return get_model("BareBackbone" if name == config["backbone"] else name)


def get_sequential_model(name: str) -> type[SequentialRecommender]:
    """Class of the sequential model ``name``; a clear error for anything else."""
    try:
        cls = get_model(name)
    except (ValueError, ImportError) as exc:
        # RecBole's lookup imports its optional exlib models (lightgbm, xgboost) for unknown names.
        raise ValueError(
            f"backbone: unknown model '{name}'. Choose a RecBole sequential model (e.g. SASRec, "
            f"GRU4Rec, NARM) or one of FMLPRec, LRURec, gMLP; "
            f"`python run_recbole_faerec.py --list-backbones` lists them."
        ) from exc
    if not issubclass(cls, SequentialRecommender):
        raise ValueError(
            f"backbone: '{name}' is a {getattr(cls, 'type', 'non-sequential')} model; FAERec "
            "wraps sequential recommenders only (`--list-backbones` lists them)."
        )
    return cls
